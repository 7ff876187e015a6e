"""Time as the service keeps it: naive UTC datetimes (as MySQL stores them) and epoch milliseconds (as
Redis and SQS carry a reservation's time). Every conversion between the forms is here."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def to_naive_utc(instant: datetime) -> datetime:
    """An aware instant, at any offset, as naive UTC; raises OverflowError beyond year 9999 in UTC."""
    return instant.astimezone(UTC).replace(tzinfo=None)


def to_iso_z(value: datetime) -> str:
    """Naive UTC as ISO-8601 with a Z."""
    return value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def epoch_ms_now() -> int:
    return int(time.time() * 1000)


def from_epoch_ms(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).replace(tzinfo=None)


def to_epoch_us(value: datetime) -> int:
    """Naive UTC as whole microseconds since the epoch (exact: MySQL keeps microseconds)."""
    delta = value.replace(tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_epoch_us(epoch_us: int) -> datetime:
    return datetime(1970, 1, 1) + timedelta(microseconds=epoch_us)
