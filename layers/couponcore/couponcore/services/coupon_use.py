"""A coupon after it is issued: the holder's wallet, redemption at checkout and its cancel.

Each redemption or cancel is one conditional write in MySQL on the issue's own row (the unit of work's
``redeem_and_commit``): it never takes the coupon row's lock and never touches the seats, the sold-out flag or
the issued count. The status route keeps unused issues in Redis; a redemption first marks the issue there, so no poll
answers from what the write is about to change.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import NoReturn

from couponcore import metrics
from couponcore.domain.clock import utc_now
from couponcore.domain.coupon import Coupon, IssueMode
from couponcore.domain.errors import CouponError, ErrorCode
from couponcore.domain.redemption import HeldCoupon, Usage, WalletEntry, check_order
from couponcore.services.ports import Clock, MetricsSink, SeatStore, UnitOfWorkFactory

# A page filtered by use reads at most this many rows; fewer matches than asked for, with a cursor, means "go
# on": the cost of a page stays bounded whatever the user holds.
FILTERED_SCAN_ROWS = 200
# Coupon terms never change once created: each container keeps those it has read, up to this many.
TERMS_KEPT = 4096


class UseAction(StrEnum):
    REDEEM = "redeem"
    RESTORE = "restore"


@dataclass(frozen=True, slots=True)
class WalletPage:
    entries: list[WalletEntry]
    next_position: tuple[datetime, int] | None  # where the next page starts; None: this was the last
    judged_at: datetime  # the instant each entry's use is judged at


@dataclass(frozen=True, slots=True)
class UseAnswer:
    held: HeldCoupon
    discount_amount: int


class CouponUseService:
    def __init__(
        self, unit_of_work: UnitOfWorkFactory, seats: SeatStore, metrics_sink: MetricsSink, clock: Clock = utc_now
    ) -> None:
        self._unit_of_work = unit_of_work
        self._seats = seats
        self._metrics = metrics_sink
        self._clock = clock
        self._terms: dict[int, Coupon] = {}

    def wallet(self, user_id: int, usage: Usage | None, after: tuple[datetime, int] | None, limit: int) -> WalletPage:
        """The user's issues, newest first, from ``after`` on; with ``usage``, only those in that use now."""
        scan = limit + 1 if usage is None else max(limit + 1, FILTERED_SCAN_ROWS)
        with self._unit_of_work() as uow:
            scanned = uow.issues.wallet(user_id, after, scan)
        now = self._clock()
        matched = scanned if usage is None else [entry for entry in scanned if entry.held.usage(now) is usage]
        if len(matched) > limit:
            return WalletPage(matched[:limit], matched[limit - 1].position, now)
        if len(scanned) == scan:  # the scan stopped before the end of the wallet
            return WalletPage(matched, scanned[-1].position, now)
        return WalletPage(matched, None, now)

    def redeem(self, coupon_id: int, user_id: int, order_id: str, order_amount: int) -> UseAnswer:
        check_order(order_id, order_amount)
        coupon = self._coupon(coupon_id)
        now = self._clock()
        if order_amount >= coupon.min_available_amount:
            self._seats.forget_issued(coupon_id, user_id)
            with self._unit_of_work() as uow:
                write = uow.redeem_and_commit(coupon_id, user_id, order_id, now)
            held, changed = write.held, write.changed
        else:  # refused whatever the row says; only why is left to read
            with self._unit_of_work() as uow:
                held, changed = uow.issues.find(coupon_id, user_id), False
        held = self._held_or_refuse(coupon, user_id, held, UseAction.REDEEM)
        refusal = held.redemption_refusal(order_id, order_amount, coupon.min_available_amount, now)
        if refusal is None and not held.is_used_by(order_id):
            refusal = ErrorCode.ISSUE_NOT_SETTLED  # the issue was written between the write and its read
        if refusal is not None:
            self._refuse(refusal, UseAction.REDEEM)
        self._metrics.count(metrics.REDEMPTIONS, action=UseAction.REDEEM, outcome="REDEEMED" if changed else "REPEATED")
        return UseAnswer(held, coupon.discount_amount)

    def restore(self, coupon_id: int, user_id: int, order_id: str) -> UseAnswer:
        check_order(order_id)
        coupon = self._coupon(coupon_id)
        # No mark in Redis: a coupon being used has none of its facts kept there (its redemption marked it, and
        # the status route keeps only unused issues), so nothing the status route answers can go stale.
        with self._unit_of_work() as uow:
            write = uow.restore_and_commit(coupon_id, user_id, order_id, self._clock())
        held = self._held_or_refuse(coupon, user_id, write.held, UseAction.RESTORE)
        refusal = held.restore_refusal(order_id)
        if refusal is not None:
            self._refuse(refusal, UseAction.RESTORE)
        self._metrics.count(
            metrics.REDEMPTIONS, action=UseAction.RESTORE, outcome="RESTORED" if write.changed else "REPEATED"
        )
        return UseAnswer(held, coupon.discount_amount)

    def _coupon(self, coupon_id: int) -> Coupon:
        """The coupon's terms, read from MySQL once per container (they never change)."""
        coupon = self._terms.get(coupon_id)
        if coupon is None:
            with self._unit_of_work() as uow:
                coupon = uow.coupons.get(coupon_id)
            if coupon is None:
                raise CouponError(ErrorCode.ISSUE_NOT_FOUND)  # no such coupon: nothing of it was issued
            if len(self._terms) >= TERMS_KEPT:
                self._terms.clear()
            self._terms[coupon_id] = coupon
        return coupon

    def _held_or_refuse(self, coupon: Coupon, user_id: int, held: HeldCoupon | None, action: UseAction) -> HeldCoupon:
        """MySQL's issue, or why there is none: a reservation still on its way to MySQL, or nothing at all."""
        if held is not None:
            return held
        on_its_way = False
        if coupon.issue_mode is IssueMode.ASYNC:
            seat = self._seats.reservation_state(coupon.id, user_id)
            on_its_way = seat.pending or (seat.holds_seat and not seat.rejected)
        self._refuse(ErrorCode.ISSUE_NOT_SETTLED if on_its_way else ErrorCode.ISSUE_NOT_FOUND, action)

    def _refuse(self, code: ErrorCode, action: UseAction) -> NoReturn:
        self._metrics.count(metrics.REDEMPTIONS, action=action, outcome=code.value)
        raise CouponError(code)
