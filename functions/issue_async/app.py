"""POST /v1/issue-async and POST /v2/issue-async: reserve in Redis, hand over to SQS."""

from couponcore.api.entry_point import http_entry_point
from couponcore.api.routes import add_issue_async_routes

lambda_handler = http_entry_point(add_issue_async_routes)
