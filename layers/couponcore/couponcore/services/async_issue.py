"""The async paths: a seat is reserved in Redis, then the reservation goes to SQS for batch_persist.

A client hears ``RESERVED`` only after SQS accepted the message. If the send surely failed the seat is
released (only while it is still this request's); if it may have arrived (a timeout after the request
left), the seat stays pending for reconciliation to resend. Either way the client hears 503. Nothing is
sold while the coupon's seat state is being recounted after a Redis loss (services/recount.py). A crash
between reserve and send leaves a pending reservation that reconciliation sends again, so nothing answered
202 is lost.

Time: a seat is reserved only when the invocation has time left to send it and, if the send fails, to
give it back (``after_reserve_s``); the V1-async lock is waited for only as long as leaves that time.
Otherwise the answer is 503 with nothing reserved, before Lambda's Timeout would cut the request short
and leave the client with a 5xx for a seat issued later.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime

from couponcore import metrics
from couponcore.config import ConfigError
from couponcore.domain.clock import epoch_ms_now, utc_now
from couponcore.domain.coupon import Coupon, IssueMode
from couponcore.domain.errors import CouponError, DependencyUnavailableError, ErrorCode, OutcomeUnknownError
from couponcore.domain.events import SeatsReleased
from couponcore.domain.issue_route import IssueRoute
from couponcore.domain.reservation import PendingReservation, ReserveOutcome
from couponcore.observability import logger
from couponcore.services import time_budget
from couponcore.services.message_bus import EventBus
from couponcore.services.ports import (
    CachedCoupon,
    Clock,
    CouponCatalog,
    CouponLock,
    FairShare,
    IssueQueue,
    LockNotAcquiredError,
    MetricsSink,
    SeatStore,
)
from couponcore.services.recount import SeatRecount

MARGIN_S = 0.5  # building the answer, and the clock's own error
NO_TIME = "Not enough time left to reserve and hand over a seat; nothing was reserved. Retry."
BUSY = "The coupon is busy; nothing was reserved. Retry later."
RECOUNTING = "The coupon's seats are being recounted after a cache failure; nothing was reserved. Retry later."
UNCONFIRMED = "The reservation may not have reached the queue; the status route will tell. Retry later."
RECOUNT_EVERY_MS = 1000  # a container tries to rebuild a paused coupon at most this often

# The V1-async critical section (in reserve_v1_async, under the lock) makes this many Redis calls: the
# count, the membership, the script. The lock's lease must outlast them at their timeout.
LOCKED_SEAT_CALLS = 3


def lock_lease_s(configured: float | None, seat_call_s: float) -> float:
    """The V1-async lock's lease: LOCK_LEASE_S, or by default the critical section at its worst plus 1 s."""
    section_s = LOCKED_SEAT_CALLS * seat_call_s
    if configured is None:
        return section_s + 1.0
    if configured <= section_s:  # the lease could expire while its owner still works
        raise ConfigError(
            f"LOCK_LEASE_S={configured} must exceed the lock's critical section, "
            f"{LOCKED_SEAT_CALLS} Redis calls at REDIS_TIMEOUT_S={seat_call_s}"
        )
    return configured


_REFUSALS = {
    ReserveOutcome.OVER_FAIR_SHARE: ErrorCode.TOO_MANY_REQUESTS,
    ReserveOutcome.DUPLICATE: ErrorCode.DUPLICATED_COUPON_ISSUE,
    ReserveOutcome.SOLD_OUT: ErrorCode.INVALID_COUPON_ISSUE_QUANTITY,
}


class AsyncIssueService:
    def __init__(
        self,
        catalog: CouponCatalog,
        seats: SeatStore,
        queue: IssueQueue,
        lock: CouponLock,
        recount: SeatRecount,
        *,
        fair_share: FairShare,
        bus: EventBus,
        metrics_sink: MetricsSink,
        seat_call_s: float,
        clock: Clock = utc_now,
        epoch_ms: Callable[[], int] = epoch_ms_now,
    ) -> None:
        self._catalog = catalog
        self._recount = recount
        self._fair_share = fair_share
        self._ended_with_seats_left: set[int] = set()  # coupon ids
        self._recount_tried: dict[int, int] = {}  # coupon id -> when this container last tried (epoch ms)
        self._seats = seats
        self._queue = queue
        self._lock = lock
        self._bus = bus
        self._metrics = metrics_sink
        self._clock = clock
        self._epoch_ms = epoch_ms
        # The worst case after the seat is taken: the send, then one call to give the seat back.
        self.after_reserve_s = queue.worst_case_s + seat_call_s + MARGIN_S
        self.after_lock_s = LOCKED_SEAT_CALLS * seat_call_s + self.after_reserve_s

    def reserve_v2(self, coupon_id: int, user_id: int) -> None:
        """V2: exists, the cached sold-out flag, the window, then one atomic Lua reservation (which counts
        the user's fair share first)."""
        now = self._clock()
        cached = self._async_coupon(coupon_id)
        refusal = cached.coupon.refusal(now, sold_out=cached.sold_out)
        if refusal is ErrorCode.INVALID_COUPON_ISSUE_DATE:
            refusal = self._quantity_before_window(cached.coupon, now)
        if refusal is not None:
            raise CouponError(refusal)
        self._queue.prepare_send()
        if time_budget.remaining_s() < self.after_reserve_s:
            raise CouponError(ErrorCode.FAIL_COUPON_ISSUE_REQUEST, NO_TIME)
        self._send(IssueRoute.V2, self._reserve(cached.coupon, user_id, self._fair_share.per_second))

    def reserve_v1_async(self, coupon_id: int, user_id: int) -> None:
        """V1-async: the fair share, exists, quantity and window, then under the coupon's lock quantity, then
        duplicate."""
        if not self._fair_share.admit(coupon_id, user_id):  # before any wait for the lock
            raise CouponError(ErrorCode.TOO_MANY_REQUESTS)
        now = self._clock()
        coupon = self._async_coupon(coupon_id).coupon
        coupon.check_issuable(now, self._seats.seats_taken(coupon_id))
        self._queue.prepare_send()
        wait_s = time_budget.remaining_s() - self.after_lock_s
        if wait_s <= 0:
            raise CouponError(ErrorCode.FAIL_COUPON_ISSUE_REQUEST, NO_TIME)
        try:
            with self._lock.hold(coupon_id, wait_s) as waited_s:  # LOCKED_SEAT_CALLS calls until it is let go
                self._metrics.observe(metrics.LOCK_WAIT, waited_s)
                if not coupon.has_quantity_left(self._seats.seats_taken(coupon_id)):
                    raise CouponError(ErrorCode.INVALID_COUPON_ISSUE_QUANTITY)
                if self._seats.holds_seat(coupon_id, user_id):
                    raise CouponError(ErrorCode.DUPLICATED_COUPON_ISSUE)
                # The same atomic script as V2, so V2 requests racing outside this lock never oversell.
                seat = self._reserve(coupon, user_id)
        except LockNotAcquiredError as error:
            self._metrics.count(metrics.LOCK_FAILURES)
            raise CouponError(ErrorCode.FAIL_COUPON_ISSUE_REQUEST, BUSY) from error
        self._send(IssueRoute.V1_ASYNC, seat)  # outside the lock: the lease covers the Redis calls only

    def _quantity_before_window(self, coupon: Coupon, now: datetime) -> ErrorCode:
        """Outside the window, and the flag says seats are left: it may not have heard of a sell-out in another
        container yet, and quantity comes first on every path, so the live count decides (once per container
        for an ended coupon: nothing more is reserved after its end)."""
        if coupon.total_quantity is None or coupon.id in self._ended_with_seats_left or now <= coupon.date_issue_start:
            return ErrorCode.INVALID_COUPON_ISSUE_DATE
        if coupon.has_quantity_left(self._seats.seats_taken(coupon.id)):
            self._ended_with_seats_left.add(coupon.id)
            return ErrorCode.INVALID_COUPON_ISSUE_DATE
        self._catalog.mark_sold_out(coupon.id)
        return ErrorCode.INVALID_COUPON_ISSUE_QUANTITY

    def _async_coupon(self, coupon_id: int) -> CachedCoupon:
        cached = self._catalog.get(coupon_id)
        if cached is None:
            raise CouponError(ErrorCode.COUPON_NOT_EXIST)
        cached.coupon.check_issue_mode(IssueMode.ASYNC)
        return cached

    def _reserve(self, coupon: Coupon, user_id: int, fair_share_per_s: int = 0) -> PendingReservation:
        seat = PendingReservation(coupon.id, user_id, uuid.uuid4().hex, self._epoch_ms())
        outcome = self._seats.reserve(seat, coupon.total_quantity, fair_share_per_s=fair_share_per_s)
        if outcome is ReserveOutcome.UNCOUNTED:
            self._metrics.count(metrics.SEATS_PAUSED_REQUESTS)
            self._try_recount(coupon.id)
            raise CouponError(ErrorCode.FAIL_COUPON_ISSUE_REQUEST, RECOUNTING)
        if outcome is ReserveOutcome.SOLD_OUT:
            self._catalog.mark_sold_out(coupon.id)  # the next requests are refused from the cache
        if outcome is not ReserveOutcome.RESERVED:
            raise CouponError(_REFUSALS[outcome])
        return seat

    def _try_recount(self, coupon_id: int) -> None:
        """The request that finds a coupon paused may rebuild its seats, when it is time (see SeatRecount):
        at most once a second per container, each step only with the time left to do it."""
        now_ms = self._epoch_ms()
        tried_ms = self._recount_tried.get(coupon_id)
        if tried_ms is not None and now_ms - tried_ms < RECOUNT_EVERY_MS:
            return
        self._recount_tried[coupon_id] = now_ms
        try:
            self._recount.try_rebuild(coupon_id)
        except DependencyUnavailableError as error:
            logger.info("seats not recounted yet", extra={"coupon_id": coupon_id, "error": str(error)})

    def _send(self, route: IssueRoute, seat: PendingReservation) -> None:
        user_id = seat.user_id
        try:
            self._queue.send(seat.message())
        except OutcomeUnknownError as error:
            # The message may be on the queue: the seat stays pending, and reconciliation resends it after its
            # grace period (batch_persist inserts once). Giving it back could sell it twice.
            self._metrics.count(metrics.RESERVATIONS_UNCONFIRMED)
            logger.warning(
                "reservation send unconfirmed, seat kept", extra={"coupon_id": seat.coupon_id, "user_id": user_id}
            )
            raise CouponError(ErrorCode.FAIL_COUPON_ISSUE_REQUEST, UNCONFIRMED) from error
        except DependencyUnavailableError:
            released = self._seats.release(seat)
            if released:
                self._metrics.count(metrics.RESERVATIONS_RELEASED, reason="send_failed")
                self._bus.publish_all([SeatsReleased(seat.coupon_id)])
            logger.warning(
                "reservation not sent, seat released",
                extra={"coupon_id": seat.coupon_id, "user_id": user_id, "released": released},
            )
            raise
        self._metrics.count(metrics.RESERVATIONS_SENT, route=route)
