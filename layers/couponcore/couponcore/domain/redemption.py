"""A coupon after it is issued: when it expires, whether it can be used, and who used it.

Redemption is decided by one conditional write in MySQL (adapters/redemptions.py) that mirrors these rules;
when that write changes nothing, these rules name why, in the contract's order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from couponcore.domain.errors import CouponError, ErrorCode

ORDER_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
MAX_ORDER_AMOUNT = 10**12
MAX_EXPIRES_IN_DAYS = 3650


class Usage(StrEnum):
    AVAILABLE = "AVAILABLE"
    USED = "USED"
    EXPIRED = "EXPIRED"


def expiry_of(date_issued: datetime, expires_in_days: int | None, date_use_end: datetime | None) -> datetime | None:
    """An issue's ``dateExpire``: the earlier of its days after issue and the event's last day of use, or None.
    Computed once, when the issue is written (V1's SQL and batch_persist both mirror this)."""
    after_days = None if expires_in_days is None else date_issued + timedelta(days=expires_in_days)
    if after_days is None or date_use_end is None:
        return after_days or date_use_end
    return min(after_days, date_use_end)


def is_expired(date_expire: datetime | None, now: datetime) -> bool:
    """Expired from the instant of ``dateExpire`` on (the redemption's SQL says ``now < date_expire``)."""
    return date_expire is not None and now >= date_expire


def usage_of(date_used: datetime | None, date_expire: datetime | None, now: datetime) -> Usage:
    """Used wins (it was used before it expired); an unused coupon past its expiry is void, cancelled or not."""
    if date_used is not None:
        return Usage.USED
    return Usage.EXPIRED if is_expired(date_expire, now) else Usage.AVAILABLE


@dataclass(frozen=True, slots=True)
class HeldCoupon:
    """One issue as its holder and the order service see it (a row of coupon_issues)."""

    coupon_id: int
    user_id: int
    date_issued: datetime
    date_expire: datetime | None = None
    date_used: datetime | None = None
    order_id: str | None = None  # the order using it now (None whenever it is unused)
    restored_order_id: str | None = None  # the last order that gave it back (a repeated DELETE answers the same)

    def usage(self, now: datetime) -> Usage:
        return usage_of(self.date_used, self.date_expire, now)

    def is_used_by(self, order_id: str) -> bool:
        return self.date_used is not None and self.order_id == order_id

    def redemption_refusal(self, order_id: str, order_amount: int, min_amount: int, now: datetime) -> ErrorCode | None:
        """Why ``order_id`` may not use this coupon, in the contract's order, or None. The order already using
        it is never refused: a retried redemption answers as the first did."""
        if self.is_used_by(order_id):
            return None
        if self.date_used is not None:
            return ErrorCode.COUPON_ALREADY_USED
        if is_expired(self.date_expire, now):
            return ErrorCode.COUPON_EXPIRED
        if order_amount < min_amount:
            return ErrorCode.ORDER_AMOUNT_TOO_LOW
        return None

    def restore_refusal(self, order_id: str) -> ErrorCode | None:
        """Only the order using it gives it back; the order that last gave it back hears the same again."""
        if self.is_used_by(order_id) or (self.date_used is None and self.restored_order_id == order_id):
            return None
        return ErrorCode.REDEMPTION_NOT_FOUND


def check_order(order_id: str, order_amount: int | None = None) -> None:
    """The contract's bounds on an order (the HTTP models check them too; this is for every other caller)."""
    if not ORDER_ID.fullmatch(order_id):
        raise CouponError(ErrorCode.INVALID_REQUEST, "orderId must be 1 to 64 characters of A-Z a-z 0-9 . _ : -")
    if order_amount is not None and not 0 <= order_amount <= MAX_ORDER_AMOUNT:
        raise CouponError(
            ErrorCode.INVALID_REQUEST, f"orderAmount must be a whole number from 0 to {MAX_ORDER_AMOUNT}."
        )


@dataclass(frozen=True, slots=True)
class WalletEntry:
    """A wallet line: the issue with the terms of its coupon."""

    held: HeldCoupon
    title: str
    discount_amount: int
    min_available_amount: int
    row_id: int  # orders issues of one instant, so a page ends at an exact place

    @property
    def position(self) -> tuple[datetime, int]:
        """Where the wallet's next page starts, newest first."""
        return self.held.date_issued, self.row_id
