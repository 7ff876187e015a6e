"""GET /health, /health/ready, /openapi.json and /docs."""

from couponcore.entrypoints.http import openapi, routes
from couponcore.entrypoints.http.entry_point import http_entry_point

lambda_handler = http_entry_point(routes.ops, openapi.docs)
