"""Coupon admin routes and the issue status route."""

from couponcore.api.entry_point import http_entry_point
from couponcore.api.routes import add_coupon_routes

lambda_handler = http_entry_point(add_coupon_routes)
