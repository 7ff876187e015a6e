"""Coupon admin routes and the issue status route."""

from couponcore.entrypoints.http import routes
from couponcore.entrypoints.http.entry_point import http_entry_point

lambda_handler = http_entry_point(routes.coupons)
