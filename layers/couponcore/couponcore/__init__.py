"""Shared core of the coupon functions: domain rules, storage adapters, services and the HTTP API."""
