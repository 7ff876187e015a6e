"""What an issue request came to (ISSUED, RESERVED, or the refusal's code), recorded where it is decided
(the route, or the one place errors become answers) and read once by the entry point for its metrics."""

from __future__ import annotations

from contextvars import ContextVar

_answered: ContextVar[str | None] = ContextVar("issue_outcome", default=None)


def record(outcome: str) -> None:
    _answered.set(outcome)


def take(default: str) -> str:
    """The outcome recorded for this request (``default`` when none was), forgotten for the next one."""
    outcome = _answered.get()
    _answered.set(None)
    return outcome or default
