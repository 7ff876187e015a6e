"""POST /v1/issue: synchronous issue under the MySQL row lock."""

from couponcore.api.entry_point import http_entry_point
from couponcore.api.routes import add_issue_sync_routes

lambda_handler = http_entry_point(add_issue_sync_routes)
