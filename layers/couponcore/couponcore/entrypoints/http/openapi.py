"""The OpenAPI document of every route, whichever function serves it, and the route that serves it."""

from __future__ import annotations

import json
from functools import lru_cache
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from couponcore.entrypoints.http.resolver import build_resolver
from couponcore.entrypoints.http.routes import ALL_ROUTERS

docs: Router = Router()  # type: ignore[no-untyped-call]


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    # A resolver of its own: the document covers routes that other functions serve.
    schema = build_resolver(*ALL_ROUTERS).get_openapi_json_schema(
        title="Coupon issuing service", version="1.0.0", description="First-come-first-served coupon issuing."
    )
    document: dict[str, Any] = json.loads(schema)
    return document


@docs.get("/openapi.json", summary="This document", include_in_schema=False)
def serve_openapi_document() -> Response[dict[str, Any]]:
    return Response(
        status_code=int(HTTPStatus.OK), content_type=content_types.APPLICATION_JSON, body=openapi_document()
    )
