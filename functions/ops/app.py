"""GET /health and GET /openapi.json."""

from couponcore.entrypoints.http import openapi, routes
from couponcore.entrypoints.http.entry_point import http_entry_point

lambda_handler = http_entry_point(routes.ops, openapi.docs)
