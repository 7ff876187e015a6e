"""The user's wallet (JWT) and redemption at checkout (the order service, IAM)."""

from couponcore.entrypoints.http import routes
from couponcore.entrypoints.http.entry_point import http_entry_point

lambda_handler = http_entry_point(routes.wallet)
