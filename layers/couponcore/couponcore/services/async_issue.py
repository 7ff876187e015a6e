"""The async paths: a seat is reserved in Redis, then the reservation goes to SQS for batch_persist.

A client hears ``RESERVED`` only after SQS accepted the message; if the send fails the seat is released
(only while it is still this request's) and the client hears 503. A crash between reserve and send
leaves a pending reservation that reconciliation sends again, so nothing answered 202 is lost.

Time: a seat is reserved only when the invocation has time left to send it and, if the send fails, to
give it back (``after_reserve_s``); the V1-async lock is waited for only as long as leaves that time.
Otherwise the answer is 503 with nothing reserved, before Lambda's Timeout would cut the request short
and leave the client with a 5xx for a seat issued later.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import datetime

from couponcore import metrics, time_budget
from couponcore.adapters import redis_keys
from couponcore.adapters.faults import SQS_UNAVAILABLE
from couponcore.adapters.issue_queue import IssueQueue, ReservationMessage
from couponcore.adapters.redis_lock import LockTimeoutError, RedisLock
from couponcore.adapters.reservations import ReservationStore, ReserveOutcome
from couponcore.coupon_cache import CachedCoupon, CouponCatalog
from couponcore.domain.clock import utc_now
from couponcore.domain.coupon import Coupon, IssueMode
from couponcore.domain.errors import CouponError, ErrorCode
from couponcore.domain.events import SeatsReleased
from couponcore.events import EventBus
from couponcore.observability import logger

MARGIN_S = 0.5  # building the answer, and the clock's own error
NO_TIME = "Not enough time left to reserve and hand over a seat; nothing was reserved. Retry."

_REFUSALS = {
    ReserveOutcome.DUPLICATE: ErrorCode.DUPLICATED_COUPON_ISSUE,
    ReserveOutcome.SOLD_OUT: ErrorCode.INVALID_COUPON_ISSUE_QUANTITY,
}


class AsyncIssueService:
    def __init__(
        self,
        catalog: CouponCatalog,
        reservations: ReservationStore,
        queue: IssueQueue,
        lock: RedisLock,
        *,
        bus: EventBus,
        redis_call_s: float,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._bus = bus
        # The worst case after the seat is taken: the send, then one Redis call to give the seat back.
        self.after_reserve_s = queue.worst_case_s + redis_call_s + MARGIN_S
        # Under the V1-async lock: three Redis calls (count, membership, the script), then the same.
        self.after_lock_s = 3 * redis_call_s + self.after_reserve_s
        self._catalog = catalog
        self._reservations = reservations
        self._queue = queue
        self._lock = lock
        self._clock = clock

    def reserve_v2(self, coupon_id: int, user_id: int) -> None:
        """V2: exists, cached sold-out-or-ended flag, window, then one atomic Lua reservation."""
        now = self._clock()
        coupon = self._issuable_coupon(coupon_id, now, use_complete_flag=True)
        if time_budget.remaining_s() < self.after_reserve_s:
            raise CouponError(ErrorCode.FAIL_COUPON_ISSUE_REQUEST, NO_TIME)
        seat = ReservationMessage(coupon_id, user_id, uuid.uuid4().hex, _epoch_ms())
        self._settle(
            "v2",
            seat,
            self._reservations.reserve(
                seat.coupon_id, seat.user_id, coupon.total_quantity, seat.token, seat.reserved_at_ms
            ),
        )

    def reserve_v1_async(self, coupon_id: int, user_id: int) -> None:
        """V1-async: exists, window, then under the coupon's lock quantity first, then duplicate."""
        now = self._clock()
        coupon = self._issuable_coupon(coupon_id, now, use_complete_flag=False)
        seat = ReservationMessage(coupon_id, user_id, uuid.uuid4().hex, _epoch_ms())
        wait_s = time_budget.remaining_s() - self.after_lock_s
        if wait_s <= 0:
            raise CouponError(ErrorCode.FAIL_COUPON_ISSUE_REQUEST, NO_TIME)
        try:
            with self._lock.hold(redis_keys.issue_lock(coupon_id), wait_s) as held:
                metrics.observe(metrics.LOCK_WAIT, held.waited_s)
                if not coupon.has_quantity_left(self._reservations.seats_taken(coupon_id)):
                    raise CouponError(ErrorCode.INVALID_COUPON_ISSUE_QUANTITY)
                if self._reservations.holds_seat(coupon_id, user_id):
                    raise CouponError(ErrorCode.DUPLICATED_COUPON_ISSUE)
                # The same atomic script as V2, so V2 requests racing outside this lock never oversell.
                outcome = self._reservations.reserve(
                    coupon_id, user_id, coupon.total_quantity, seat.token, seat.reserved_at_ms
                )
        except LockTimeoutError as error:
            metrics.count(metrics.LOCK_FAILURES)
            raise CouponError(
                ErrorCode.FAIL_COUPON_ISSUE_REQUEST, "The coupon is busy; nothing was reserved. Retry later."
            ) from error
        self._settle("v1-async", seat, outcome)

    def _issuable_coupon(self, coupon_id: int, now: datetime, *, use_complete_flag: bool) -> Coupon:
        cached: CachedCoupon | None = self._catalog.get(coupon_id)
        if cached is None:
            raise CouponError(ErrorCode.COUPON_NOT_EXIST)
        coupon = cached.coupon
        coupon.check_issue_mode(IssueMode.ASYNC)
        if use_complete_flag and cached.issue_complete:
            ended = coupon.date_issue_end < now
            raise CouponError(ErrorCode.INVALID_COUPON_ISSUE_DATE if ended else ErrorCode.INVALID_COUPON_ISSUE_QUANTITY)
        if not coupon.is_window_open(now):
            raise CouponError(ErrorCode.INVALID_COUPON_ISSUE_DATE)
        return coupon

    def _settle(self, route: str, seat: ReservationMessage, outcome: ReserveOutcome) -> None:
        if outcome is ReserveOutcome.SOLD_OUT:
            self._catalog.mark_complete(seat.coupon_id)  # the next requests are refused from the cache
        if outcome is not ReserveOutcome.RESERVED:
            raise CouponError(_REFUSALS[outcome])
        try:
            self._queue.send(seat)
        except SQS_UNAVAILABLE as error:
            released = self._reservations.release(seat.coupon_id, seat.user_id, seat.token)
            if released:
                metrics.count(metrics.RESERVATIONS_RELEASED, reason="send_failed")
                self._bus.publish_all([SeatsReleased(seat.coupon_id)])
            logger.warning(
                "reservation not sent, seat released",
                extra={
                    "coupon_id": seat.coupon_id,
                    "user_id": seat.user_id,
                    "released": released,
                    "error": repr(error),
                },
            )
            raise CouponError(ErrorCode.FAIL_COUPON_ISSUE_REQUEST) from error
        metrics.count(metrics.RESERVATIONS_SENT, route=route)


def _epoch_ms() -> int:
    return int(time.time() * 1000)
