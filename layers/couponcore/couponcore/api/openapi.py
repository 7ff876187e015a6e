"""The OpenAPI document of every route, whichever function serves it."""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from couponcore.api.resolver import build_resolver
from couponcore.api.routes import add_coupon_routes, add_issue_async_routes, add_issue_sync_routes, add_ops_routes

ALL_ROUTE_GROUPS = (add_issue_sync_routes, add_issue_async_routes, add_coupon_routes, add_ops_routes)


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    # A resolver of its own: the document covers routes that other functions serve.
    schema = build_resolver(*ALL_ROUTE_GROUPS).get_openapi_json_schema(
        title="Coupon issuing service", version="1.0.0", description="First-come-first-served coupon issuing."
    )
    document: dict[str, Any] = json.loads(schema)
    return document
