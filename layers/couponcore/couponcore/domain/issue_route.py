"""The three ways to issue a coupon. Each value is the route's label in metrics, logs and the tools."""

from __future__ import annotations

from enum import StrEnum


class IssueRoute(StrEnum):
    V1 = "v1"  # synchronous, under the coupon's row lock in MySQL
    V1_ASYNC = "v1-async"  # reserved under a per-coupon Redis lock, persisted by batch_persist
    V2 = "v2"  # reserved by one atomic Lua script, persisted by batch_persist

    @property
    def path(self) -> str:
        """The contract's path of the route."""
        return {"v1": "/v1/issue", "v1-async": "/v1/issue-async", "v2": "/v2/issue-async"}[self.value]
