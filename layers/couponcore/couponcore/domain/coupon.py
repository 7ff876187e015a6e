"""The first-come-first-served coupon and its issue rules (the seed's ``Coupon`` entity)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from couponcore.domain.errors import CouponError, ErrorCode


class CouponType(StrEnum):
    FIRST_COME_FIRST_SERVED = "FIRST_COME_FIRST_SERVED"


class IssueMode(StrEnum):
    """Which path issues a coupon, so Redis and MySQL never count one coupon two ways."""

    SYNC = "SYNC"
    ASYNC = "ASYNC"


@dataclass(frozen=True, slots=True)
class Coupon:
    """A coupon as the rules see it. Times are naive UTC, as stored."""

    id: int
    title: str
    coupon_type: CouponType
    total_quantity: int | None  # None means unlimited
    issued_quantity: int
    discount_amount: int
    min_available_amount: int
    date_issue_start: datetime
    date_issue_end: datetime
    issue_mode: IssueMode

    @classmethod
    def from_fields(cls, fields: Mapping[Any, Any]) -> Coupon:
        """From a mapping keyed by field name (a MySQL row, a cache entry); enums and times may be text."""
        return cls(
            id=fields["id"],
            title=fields["title"],
            coupon_type=CouponType(fields["coupon_type"]),
            total_quantity=fields["total_quantity"],
            issued_quantity=fields["issued_quantity"],
            discount_amount=fields["discount_amount"],
            min_available_amount=fields["min_available_amount"],
            date_issue_start=_as_datetime(fields["date_issue_start"]),
            date_issue_end=_as_datetime(fields["date_issue_end"]),
            issue_mode=IssueMode(fields["issue_mode"]),
        )

    def has_quantity_left(self, taken: int | None = None) -> bool:
        """True while seats remain; ``taken`` overrides the persisted count (the async paths count in Redis)."""
        used = self.issued_quantity if taken is None else taken
        return self.total_quantity is None or used < self.total_quantity

    def is_window_open(self, now: datetime) -> bool:
        # Strictly between: exactly at start or at end the window is closed (seed semantics).
        return self.date_issue_start < now < self.date_issue_end

    def is_issue_complete(self, now: datetime, taken: int | None = None) -> bool:
        """Sold out or ended; a coupon that has not started yet is not complete."""
        return self.date_issue_end < now or not self.has_quantity_left(taken)

    def check_issue_mode(self, mode: IssueMode) -> None:
        if self.issue_mode is not mode:
            raise CouponError(ErrorCode.WRONG_ISSUE_MODE)

    def check_issuable(self, now: datetime, taken: int | None = None) -> None:
        """The seed's ``Coupon.issue`` order: quantity first, then the window."""
        if not self.has_quantity_left(taken):
            raise CouponError(ErrorCode.INVALID_COUPON_ISSUE_QUANTITY)
        if not self.is_window_open(now):
            raise CouponError(ErrorCode.INVALID_COUPON_ISSUE_DATE)


def _as_datetime(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


@dataclass(frozen=True, slots=True)
class NewCoupon:
    """What an admin asks for; validated here so every entry point shares the rules."""

    title: str
    total_quantity: int | None
    discount_amount: int
    min_available_amount: int
    date_issue_start: datetime
    date_issue_end: datetime
    issue_mode: IssueMode = IssueMode.ASYNC

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise CouponError(ErrorCode.INVALID_REQUEST, "title must not be blank.")
        if self.total_quantity is not None and self.total_quantity < 1:
            raise CouponError(ErrorCode.INVALID_REQUEST, "totalQuantity must be positive or null (unlimited).")
        if self.discount_amount < 0 or self.min_available_amount < 0:
            raise CouponError(ErrorCode.INVALID_REQUEST, "amounts must not be negative.")
        if self.date_issue_start >= self.date_issue_end:
            raise CouponError(ErrorCode.INVALID_REQUEST, "dateIssueStart must be before dateIssueEnd.")


@dataclass(frozen=True, slots=True)
class Issue:
    coupon_id: int
    user_id: int
    date_issued: datetime
