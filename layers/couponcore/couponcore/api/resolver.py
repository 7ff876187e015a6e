"""The Powertools resolver every HTTP function uses."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from http import HTTPStatus
from typing import Any, cast

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEventV2

from couponcore import metrics
from couponcore.api.errors import error_response, register_error_handlers
from couponcore.api.routes import RouteGroup
from couponcore.domain.errors import CouponError, ErrorCode

MAX_BODY_BYTES = 8 * 1024
# Issue routes by route key: their outcomes and latency are metrics.
ISSUE_ROUTES = {"POST /v1/issue": "v1", "POST /v1/issue-async": "v1-async", "POST /v2/issue-async": "v2"}
SUCCESS_CODES = {200: "ISSUED", 202: "RESERVED"}


_request = threading.local()


class CouponApiResolver(APIGatewayHttpResolver):
    # Powertools keeps the request being resolved on the BaseRouter class, shared by every resolver in the
    # process. In Lambda a container serves one request at a time, so that is safe; the local server and
    # the concurrency tests resolve many requests at once in one process, so here each thread keeps its own.
    @property  # type: ignore[override]
    def current_event(self) -> APIGatewayProxyEventV2:
        event: APIGatewayProxyEventV2 = _request.event
        return event

    @current_event.setter
    def current_event(self, value: APIGatewayProxyEventV2) -> None:
        _request.event = value

    def _to_proxy_event(self, event: dict[str, Any]) -> APIGatewayProxyEventV2:
        proxy = cast(APIGatewayProxyEventV2, super()._to_proxy_event(event))
        _request.event = proxy
        return proxy

    def resolve(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        route = ISSUE_ROUTES.get(str(event.get("routeKey")))
        if route is None:
            return self._resolve_checked(event, context)
        started = time.perf_counter()
        response = self._resolve_checked(event, context)
        metrics.observe(metrics.ISSUE_LATENCY, time.perf_counter() - started, route=route)
        metrics.count(metrics.ISSUE_REQUESTS, route=route, outcome=_outcome(response))
        return response

    def _resolve_checked(self, event: Mapping[str, Any], context: Any) -> dict[str, Any]:
        # Refused before validation runs, so an oversized body is never parsed.
        body = event.get("body") or ""
        size = len(body) * 3 // 4 if event.get("isBase64Encoded") else len(body.encode())
        if size > MAX_BODY_BYTES:
            too_large = CouponError(ErrorCode.INVALID_REQUEST, f"The body is larger than {MAX_BODY_BYTES} bytes.")
            response = error_response(too_large, HTTPStatus.BAD_REQUEST)
            return {
                "statusCode": response.status_code,
                "headers": {"Content-Type": "application/json"},
                "body": self._serializer(cast(dict[str, Any], response.body)),
                "isBase64Encoded": False,
            }
        if body:
            # The API speaks JSON only: a body is JSON whatever Content-Type a client sent (curl -d sends a form).
            event = {**event, "headers": {**(event.get("headers") or {}), "content-type": "application/json"}}
        return super().resolve(event, context)


def _outcome(response: dict[str, Any]) -> str:
    status = int(response.get("statusCode", 0))
    if status in SUCCESS_CODES:
        return SUCCESS_CODES[status]
    try:
        return str(json.loads(response.get("body") or "{}").get("code", status))
    except ValueError:
        return str(status)


def build_resolver(*route_groups: RouteGroup) -> CouponApiResolver:
    app = CouponApiResolver(enable_validation=True)
    register_error_handlers(app)
    for add_routes in route_groups:
        add_routes(app)
    return app
