"""Coupon admin routes and the issue status route."""

from couponcore.api import routes
from couponcore.api.entry_point import http_entry_point

lambda_handler = http_entry_point(routes.coupons)
