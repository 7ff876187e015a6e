"""POST /v1/issue: synchronous issue under the MySQL row lock."""

from couponcore.entrypoints import snapstart
from couponcore.entrypoints.http import routes
from couponcore.entrypoints.http.entry_point import http_entry_point

lambda_handler = http_entry_point(routes.issue_sync)
snapstart.register()
