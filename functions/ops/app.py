"""GET /health and GET /openapi.json."""

from couponcore.api.entry_point import http_entry_point
from couponcore.api.routes import add_ops_routes

lambda_handler = http_entry_point(add_ops_routes)
