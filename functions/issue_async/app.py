"""POST /v1/issue-async and POST /v2/issue-async: reserve in Redis, hand over to SQS; GET /health/live."""

from couponcore.entrypoints import snapstart
from couponcore.entrypoints.http import routes
from couponcore.entrypoints.http.entry_point import http_entry_point

lambda_handler = http_entry_point(routes.issue_async)
snapstart.register()
