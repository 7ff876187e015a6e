"""Shared core of the coupon functions: domain rules, use cases and their ports, the adapters that
implement them, and the entry points (HTTP, the SQS batch, the schedule)."""
