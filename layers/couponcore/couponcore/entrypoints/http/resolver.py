"""The Powertools resolver every HTTP function uses, and what is checked before it sees a request."""

from __future__ import annotations

import json
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from couponcore.bootstrap import services
from couponcore.domain.errors import CouponError, DependencyUnavailableError, ErrorCode
from couponcore.domain.issue_route import IssueRoute
from couponcore.entrypoints.http.errors import error_response, register_error_handlers

MAX_BODY_BYTES = 8 * 1024
# Issue routes by route key: their outcomes and latency are metrics.
ISSUE_ROUTES = {f"POST {route.path}": route for route in IssueRoute}


def build_resolver(*routers: Router) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=True)
    register_error_handlers(app)
    for router in routers:
        app.include_router(router)
    return app


def refuse_oversized(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """The answer to a body over the limit, before anything parses it; None for any other request.

    Not a resolver middleware: Powertools runs its request validation (which parses the body) ahead of them."""
    body = event.get("body") or ""
    size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
    if size <= MAX_BODY_BYTES:
        return None
    too_large = CouponError(ErrorCode.INVALID_REQUEST, f"The body is larger than {MAX_BODY_BYTES} bytes.")
    return _as_answer(error_response(too_large, HTTPStatus.BAD_REQUEST))


def refuse_around_the_front_door(event: Mapping[str, Any]) -> dict[str, Any] | None:
    """403 for a request that went around the front door (adapters/origin.py); None when it may go on."""
    try:
        admitted = services().adapters.origin_guard.admits(event)
    except DependencyUnavailableError:
        return _as_answer(error_response(CouponError(ErrorCode.FAIL_COUPON_ISSUE_REQUEST)))
    if admitted:
        return None
    return _as_answer(error_response(CouponError(ErrorCode.FORBIDDEN, "Call the API through its front door.")))


def _as_answer(response: Response[Any]) -> dict[str, Any]:
    headers = {"Content-Type": "application/json", **(response.headers or {})}
    return {
        "statusCode": response.status_code,
        "headers": headers,
        "body": json.dumps(response.body, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def as_json_request(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The API speaks JSON only: a body is JSON whatever Content-Type a client sent (curl -d sends a form)."""
    if not event.get("body"):
        return event
    return {**event, "headers": {**(event.get("headers") or {}), "content-type": "application/json"}}
