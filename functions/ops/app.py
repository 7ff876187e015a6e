"""GET /health and GET /openapi.json."""

from couponcore.api import openapi, routes
from couponcore.api.entry_point import http_entry_point

lambda_handler = http_entry_point(routes.ops, openapi.docs)
