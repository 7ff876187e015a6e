"""The OpenAPI document of every route, whichever function serves it, and Swagger UI on it at /docs."""

from __future__ import annotations

import json
from functools import cache, lru_cache
from http import HTTPStatus
from importlib.resources import files
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router

from couponcore.entrypoints.http.resolver import build_resolver
from couponcore.entrypoints.http.routes import ALL_ROUTERS

docs: Router = Router()  # type: ignore[no-untyped-call]

# Routes anyone may call; every other one needs a bearer token (a user's, or an admin's for /coupons
# locally; in AWS the admin routes take IAM signatures instead).
PUBLIC_PATHS = frozenset({"/health", "/health/live", "/health/ready"})
BEARER = {"type": "http", "scheme": "bearer", "bearerFormat": "JWT", "description": "make token USER=42"}


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    # A resolver of its own: the document covers routes that other functions serve.
    schema = build_resolver(*ALL_ROUTERS).get_openapi_json_schema(
        title="Coupon issuing service", version="1.0.0", description="First-come-first-served coupon issuing."
    )
    document: dict[str, Any] = json.loads(schema)
    document.setdefault("components", {}).setdefault("securitySchemes", {})["bearer"] = BEARER
    for path, operations in document["paths"].items():
        if path not in PUBLIC_PATHS:
            for operation in operations.values():
                operation["security"] = [{"bearer": []}]
    return document


@docs.get("/openapi.json", summary="This document", include_in_schema=False)
def serve_openapi_document() -> Response[dict[str, Any]]:
    return Response(
        status_code=int(HTTPStatus.OK), content_type=content_types.APPLICATION_JSON, body=openapi_document()
    )


@cache
def swagger_page() -> str:
    # Swagger UI's own files as Powertools ships them: the page loads nothing from any other host.
    assets = files("aws_lambda_powertools.event_handler.openapi.swagger_ui")
    script = assets.joinpath("swagger-ui-bundle.min.js").read_text(encoding="utf-8").replace("</script", "<\\/script")
    style = assets.joinpath("swagger-ui.min.css").read_text(encoding="utf-8")
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Coupon issuing service - API</title><style>{style}</style></head>
<body>
<div id="swagger-ui"></div>
<script>{script}</script>
<script>
  window.ui = SwaggerUIBundle({{url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
    docExpansion: "list", persistAuthorization: true}});
</script>
</body>
</html>"""


@docs.get("/docs", summary="Swagger UI on /openapi.json", include_in_schema=False, compress=True)
def serve_swagger_ui() -> Response[str]:
    return Response(status_code=int(HTTPStatus.OK), content_type=content_types.TEXT_HTML, body=swagger_page())
