"""The invocation's time: what is left before the function's Timeout. A request that would run past it
is stopped by Lambda mid-way, so waits are cut to fit and work that could not finish is not started.
Outside an invocation (tests, tools) there is no limit."""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from couponcore.domain.errors import DependencyUnavailableError

_deadline: ContextVar[float | None] = ContextVar("invocation_deadline", default=None)


@contextmanager
def invocation(remaining_ms: int) -> Iterator[None]:
    """Within the block, remaining_s() counts down from the invocation's remaining time."""
    token = _deadline.set(time.monotonic() + remaining_ms / 1000)
    try:
        yield
    finally:
        _deadline.reset(token)


def remaining_s() -> float:
    deadline = _deadline.get()
    return math.inf if deadline is None else deadline - time.monotonic()


def require(seconds: float, dependency: str) -> None:
    """Refuses to start a wait that could outlast the invocation: the client hears 503 (nothing was done)
    instead of a Lambda timeout."""
    left = remaining_s()
    if left < seconds:
        raise DependencyUnavailableError(dependency, TimeoutError(f"{left:.2f} s left, {seconds:.2f} s needed"))
