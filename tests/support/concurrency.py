"""Many calls of one use case at once, through the services (the layer every handler calls), against the
real MariaDB, Redis and SQS: each call's outcome is the code the contract would answer with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from couponcore.domain.errors import CouponError

Call = TypeVar("Call")


def outcome(action: Callable[[], object], success: str) -> str:
    try:
        action()
    except CouponError as refused:
        return refused.code.value
    return success


def run_at_once(calls: Sequence[Call], attempt: Callable[[Call], str], workers: int) -> list[str]:
    """Every call's outcome, in the order of `calls`."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(attempt, calls))
