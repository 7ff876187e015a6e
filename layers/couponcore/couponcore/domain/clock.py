from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Naive UTC, the form times are stored and compared in."""
    return datetime.now(UTC).replace(tzinfo=None)
