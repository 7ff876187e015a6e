"""Coupon administration and the issue status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from couponcore.domain.clock import from_epoch_us, to_epoch_us, utc_now
from couponcore.domain.coupon import Coupon, IssueMode, NewCoupon
from couponcore.domain.errors import CouponError, DependencyUnavailableError, ErrorCode
from couponcore.domain.events import CouponChanged
from couponcore.domain.redemption import HeldCoupon, Usage, usage_of
from couponcore.observability import logger
from couponcore.services.ports import Clock, IssuedFacts, SeatState, SeatStore, UnitOfWorkFactory

NOT_KNOWN_YET = "The coupon's reservations are being recounted; the outcome is not known yet. Retry later."


@dataclass(frozen=True, slots=True)
class CouponView:
    coupon: Coupon
    reserved_quantity: int


class IssueStatus(StrEnum):
    ISSUED = "ISSUED"
    RESERVED = "RESERVED"
    REJECTED = "REJECTED"


@dataclass(frozen=True, slots=True)
class IssueStatusView:
    coupon_id: int
    user_id: int
    status: IssueStatus
    date_issued: datetime | None
    usage: Usage | None = None  # only an ISSUED coupon has a use
    date_expire: datetime | None = None
    date_used: datetime | None = None
    order_id: str | None = None

    @classmethod
    def issued(cls, held: HeldCoupon, now: datetime) -> IssueStatusView:
        return cls(
            held.coupon_id,
            held.user_id,
            IssueStatus.ISSUED,
            held.date_issued,
            held.usage(now),
            held.date_expire,
            held.date_used,
            held.order_id,
        )


class CouponService:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        seats: SeatStore,
        clock: Clock = utc_now,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._seats = seats
        self._clock = clock

    def create(self, new_coupon: NewCoupon) -> CouponView:
        with self._unit_of_work() as uow:
            coupon_id = uow.coupons.add(new_coupon, self._clock())
            coupon = uow.coupons.get(coupon_id)
            assert coupon is not None
            uow.raise_event(CouponChanged(coupon_id))
            uow.commit()
        return CouponView(coupon=coupon, reserved_quantity=0)

    def get(self, coupon_id: int) -> CouponView:
        with self._unit_of_work() as uow:
            coupon = uow.coupons.get(coupon_id)
        if coupon is None:
            raise CouponError(ErrorCode.COUPON_NOT_EXIST)
        reserved = self._seats.seats_taken(coupon_id) if coupon.issue_mode is IssueMode.ASYNC else 0
        return CouponView(coupon=coupon, reserved_quantity=reserved)

    def issue_status(self, coupon_id: int, user_id: int) -> IssueStatusView:
        """Polled by every client after a sale: what Redis knows answers without MySQL (an issue MySQL holds,
        a reservation on its way, a refusal); only the rest reads MySQL, which then tells Redis. With Redis
        down, what MySQL holds as final is still answered."""
        try:
            seat = self._seats.reservation_state(coupon_id, user_id)
        except DependencyUnavailableError as redis_down:
            return self._status_from_mysql(coupon_id, user_id, redis_down)
        known = _final_or_pending(coupon_id, user_id, seat, self._clock())
        if known is not None:
            return known
        issue, rejected_in_mysql = self._mysql_outcome(coupon_id, user_id)
        if issue is not None:
            if issue.date_used is None:
                self._remember(issue)
            return IssueStatusView.issued(issue, self._clock())
        # Not issued: a seat held in Redis is on its way to MySQL (a user refused once may have reserved
        # again); a refusal is final in MySQL, and Redis remembers the refusals of older versions.
        if seat.holds_seat:
            return IssueStatusView(coupon_id, user_id, IssueStatus.RESERVED, None)
        if rejected_in_mysql or seat.rejected:
            return IssueStatusView(coupon_id, user_id, IssueStatus.REJECTED, None)
        if not seat.counted and self._sold_by_redis(coupon_id):
            # Redis lost the coupon's reservations: this user's may still be on its way to MySQL.
            raise CouponError(ErrorCode.FAIL_COUPON_ISSUE_REQUEST, NOT_KNOWN_YET)
        raise CouponError(ErrorCode.ISSUE_NOT_FOUND)

    def _status_from_mysql(
        self, coupon_id: int, user_id: int, redis_down: DependencyUnavailableError
    ) -> IssueStatusView:
        issue, rejected = self._mysql_outcome(coupon_id, user_id)
        if issue is not None:
            return IssueStatusView.issued(issue, self._clock())
        if rejected:
            return IssueStatusView(coupon_id, user_id, IssueStatus.REJECTED, None)
        raise redis_down  # a reservation on its way would be in Redis only

    def _mysql_outcome(self, coupon_id: int, user_id: int) -> tuple[HeldCoupon | None, bool]:
        """The issue MySQL holds, or whether it refused this user for good."""
        with self._unit_of_work() as uow:
            issue = uow.issues.find(coupon_id, user_id)
            return issue, issue is None and uow.issues.was_rejected(coupon_id, user_id)

    def _remember(self, issue: HeldCoupon) -> None:
        expire_us = None if issue.date_expire is None else to_epoch_us(issue.date_expire)
        try:
            self._seats.remember_issued(
                issue.coupon_id, issue.user_id, IssuedFacts(to_epoch_us(issue.date_issued), expire_us)
            )
        except DependencyUnavailableError as error:  # only a cache: the next poll reads MySQL again
            logger.info("issue not remembered in Redis", extra={"coupon_id": issue.coupon_id, "error": str(error)})

    def _sold_by_redis(self, coupon_id: int) -> bool:
        with self._unit_of_work() as uow:
            coupon = uow.coupons.get(coupon_id)
        return coupon is not None and coupon.issue_mode is IssueMode.ASYNC


def _final_or_pending(coupon_id: int, user_id: int, seat: SeatState, now: datetime) -> IssueStatusView | None:
    """What Redis alone can answer: an unused issue MySQL holds (its facts kept), a reservation on its way, a
    refusal."""
    if seat.issued is not None:
        expire = None if seat.issued.expire_at_us is None else from_epoch_us(seat.issued.expire_at_us)
        usage = usage_of(None, expire, now)
        issued = from_epoch_us(seat.issued.issued_at_us)
        return IssueStatusView(coupon_id, user_id, IssueStatus.ISSUED, issued, usage, expire)
    if seat.pending:
        return IssueStatusView(coupon_id, user_id, IssueStatus.RESERVED, None)
    if seat.rejected and not seat.holds_seat:
        return IssueStatusView(coupon_id, user_id, IssueStatus.REJECTED, None)
    return None
