"""The first-come-first-served coupon and its issue rules (the seed's ``Coupon`` entity)."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from couponcore.domain.errors import CouponError, ErrorCode
from couponcore.domain.redemption import MAX_EXPIRES_IN_DAYS, expiry_of

MAX_ID = 2**63 - 1  # ids are BIGINT: the largest coupon or user id there can be


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
    expires_in_days: int | None = None  # an issue expires this many days after it is issued
    date_use_end: datetime | None = None  # no issue of this coupon is used after it

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
            # Absent from cache entries written before coupons could expire.
            expires_in_days=fields.get("expires_in_days"),
            date_use_end=_as_optional_datetime(fields.get("date_use_end")),
        )

    def expiry_for(self, date_issued: datetime) -> datetime | None:
        """The ``dateExpire`` of an issue of this coupon dated ``date_issued``."""
        return expiry_of(date_issued, self.expires_in_days, self.date_use_end)

    def has_quantity_left(self, taken: int | None = None) -> bool:
        """The quantity rule (see ``quantity_left``); ``taken`` overrides the persisted count (the async
        paths count in Redis)."""
        return quantity_left(self.total_quantity, self.issued_quantity if taken is None else taken)

    def seats_left(self, taken: int | None = None) -> int | None:
        """How many more may be issued; None when unlimited."""
        used = self.issued_quantity if taken is None else taken
        return None if self.total_quantity is None else max(0, self.total_quantity - used)

    def is_window_open(self, now: datetime) -> bool:
        """The window rule: open strictly between start and end (exactly at either it is closed)."""
        return self.date_issue_start < now < self.date_issue_end

    def refusal(self, now: datetime, *, sold_out: bool) -> ErrorCode | None:
        """The refusal order of every path (the seed's ``checkIssuableCoupon``): quantity first, then the
        window. A coupon that is both sold out and ended is refused as sold out."""
        if sold_out:
            return ErrorCode.INVALID_COUPON_ISSUE_QUANTITY
        if not self.is_window_open(now):
            return ErrorCode.INVALID_COUPON_ISSUE_DATE
        return None

    def check_issue_mode(self, mode: IssueMode) -> None:
        if self.issue_mode is not mode:
            raise CouponError(ErrorCode.WRONG_ISSUE_MODE)

    def issue_refusal(
        self, now: datetime, *, mode: IssueMode, taken: int | None = None, already_issued: bool = False
    ) -> ErrorCode | None:
        """Why this user may not be issued this coupon on a path of ``mode``, or None: the mode, then
        quantity and window in the order above, then the duplicate. The V1 SQL guard mirrors it."""
        if self.issue_mode is not mode:
            return ErrorCode.WRONG_ISSUE_MODE
        code = self.refusal(now, sold_out=not self.has_quantity_left(taken))
        if code is None and already_issued:
            return ErrorCode.DUPLICATED_COUPON_ISSUE
        return code

    def check_issuable(self, now: datetime, taken: int | None = None) -> None:
        """Raises the refusal, in the order above, given how many seats are taken."""
        code = self.refusal(now, sold_out=not self.has_quantity_left(taken))
        if code is not None:
            raise CouponError(code)


def quantity_left(total: int | None, taken: int) -> bool:
    """The quantity rule: seats remain while fewer than the total are taken (no total: unlimited). The V1
    SQL guard and the Lua reservation script mirror it; tests check that they agree on every edge."""
    return total is None or taken < total


def _as_datetime(value: datetime | str) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(value)


def _as_optional_datetime(value: datetime | str | None) -> datetime | None:
    return None if value is None else _as_datetime(value)


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
    expires_in_days: int | None = None
    date_use_end: datetime | None = None

    def __post_init__(self) -> None:
        if not self.title.strip():
            raise CouponError(ErrorCode.INVALID_REQUEST, "title must not be blank.")
        if self.total_quantity is not None and self.total_quantity < 1:
            raise CouponError(ErrorCode.INVALID_REQUEST, "totalQuantity must be positive or null (unlimited).")
        if self.discount_amount < 0 or self.min_available_amount < 0:
            raise CouponError(ErrorCode.INVALID_REQUEST, "amounts must not be negative.")
        if self.date_issue_start >= self.date_issue_end:
            raise CouponError(ErrorCode.INVALID_REQUEST, "dateIssueStart must be before dateIssueEnd.")
        if self.expires_in_days is not None and not 1 <= self.expires_in_days <= MAX_EXPIRES_IN_DAYS:
            raise CouponError(ErrorCode.INVALID_REQUEST, f"expiresInDays must be 1 to {MAX_EXPIRES_IN_DAYS}.")
        if self.date_use_end is not None and self.date_use_end <= self.date_issue_start:
            raise CouponError(ErrorCode.INVALID_REQUEST, "dateUseEnd must be after dateIssueStart.")


@dataclass(frozen=True, slots=True)
class BatchCut:
    accepted: list[tuple[int, datetime]]  # (user, reserved at), to be issued
    refused: list[int]  # users refused for good: no seat left for them


def first_come_cut(
    reservations: Iterable[tuple[int, datetime]], already_issued: Collection[int], seats_left: int | None
) -> BatchCut:
    """First come, first served over a batch of (user, reserved at): the earliest reservation of each user
    not yet issued, in the order they were reserved, as far as the seats left go (None: unlimited)."""
    fresh: dict[int, datetime] = {}
    for user, at in sorted(reservations, key=lambda reservation: reservation[1]):
        if user not in already_issued and user not in fresh:
            fresh[user] = at
    ordered = list(fresh.items())
    room = len(ordered) if seats_left is None else seats_left
    return BatchCut(accepted=ordered[:room], refused=[user for user, _ in ordered[room:]])
