"""Recounting a coupon's seats after Redis lost them, exactly.

Redis sells a seat only from a state known complete: the reservation script refuses (and the client hears
503 with nothing reserved) while the coupon's ``counted`` marker is missing. A loss removes it: a restart
or flush empties everything, and a stale state (a lagging replica promoted) is caught the moment MySQL
holds an issue Redis does not (batch_persist, reconciliation), which removes the marker too.

The rebuild counts what is issued (MySQL's rows) and what is on its way (messages sent before the loss and
not yet persisted). The second part is made knowable by waiting: no reservation is made after the loss, so
once every send begun before it has finished (the queue's worst send time) and the queue holds no message
at all, everything sent before the loss is in MySQL; then the seats are MySQL's rows plus whatever is still
pending in Redis. If the queue never empties (other coupons keep selling), every message sent before the
loss has left it anyway once it could have been received its last time: the bound of the pause.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from couponcore import metrics
from couponcore.domain.clock import epoch_ms_now
from couponcore.observability import logger
from couponcore.services import time_budget
from couponcore.services.ports import IssueQueue, MetricsSink, SeatLedger, UnitOfWorkFactory

CLOCK_SKEW_MS = 500  # between the process that saw the loss and one still sending
MARGIN_S = 0.5
REBUILD_CALLS = 4  # SeatLedger.rebuild: its lock, the issued users, the atomic finish, the lock let go


@dataclass(frozen=True, slots=True)
class RecountCosts:
    """The longest each step of a recount can take: each starts only if the invocation has that time left, so
    a recount tried by an issue request never outlasts it (a step not started is tried again later)."""

    redis_s: float  # one Redis call
    queue_s: float  # the queue's counts
    mysql_s: float  # a connection, then one read of the coupon's issues (a secret read guards itself)


class SeatRecount:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        ledger: SeatLedger,
        queue: IssueQueue,
        metrics_sink: MetricsSink,
        *,
        longest_stay_s: float,
        costs: RecountCosts,
        epoch_ms: Callable[[], int] = epoch_ms_now,
    ) -> None:
        self._costs = costs
        self._unit_of_work = unit_of_work
        self._ledger = ledger
        self._queue = queue
        self._metrics = metrics_sink
        self._epoch_ms = epoch_ms
        # A send begun before the loss has landed (or failed) by then.
        self._sends_done_ms = int(queue.worst_case_s * 1000) + CLOCK_SKEW_MS
        # A message sent before the loss has left the queue (processed, or dead-lettered) by then.
        self._longest_stay_ms = int(longest_stay_s * 1000) + self._sends_done_ms

    @property
    def bound_s(self) -> float:
        """The longest a coupon pauses after a loss (with MySQL and SQS up)."""
        return self._longest_stay_ms / 1000

    def count_new(self, coupon_id: int) -> None:
        """A coupon just created: nothing issued, nothing on its way. Its (empty) seat state is complete."""
        self._ledger.rebuild(coupon_id, [], self._epoch_ms())

    def lost(self, coupon_id: int, found_by: str) -> None:
        """The seat state holds less than MySQL: stop selling from it until it is rebuilt."""
        if self._ledger.forget_count(coupon_id, self._epoch_ms()):
            self._metrics.count(metrics.SEATS_LOST, found_by=found_by)
            logger.warning("seat state incomplete: the coupon pauses until recounted", extra={"coupon_id": coupon_id})

    def try_rebuild(self, coupon_id: int) -> bool:
        """Rebuild if it is time; True once the coupon's seats are counted (by this call or another)."""
        now_ms = self._epoch_ms()
        if not _has_time(self._costs.redis_s):
            return False
        lost_at = self._ledger.loss_seen_at(coupon_id, now_ms)
        if lost_at is None:
            return True
        return self._all_sent_before_is_in_mysql(now_ms - lost_at) and self._rebuild(coupon_id, now_ms)

    def _all_sent_before_is_in_mysql(self, waited_ms: int) -> bool:
        if waited_ms < self._sends_done_ms:
            return False
        if waited_ms >= self._longest_stay_ms:
            return True
        return _has_time(self._costs.queue_s) and self._queue.holds_nothing()

    def _rebuild(self, coupon_id: int, now_ms: int) -> bool:
        costs = self._costs
        if not _has_time(costs.mysql_s):
            return False
        issued = self._issued(coupon_id)
        if not _has_time(REBUILD_CALLS * costs.redis_s):
            return False
        seen_at = self._ledger.rebuild(coupon_id, issued, now_ms)
        if seen_at is None:
            return False  # another process is rebuilding it, or has
        # Issues persisted while this rebuild ran (their pending entries cleared meanwhile) are seats too.
        if _has_time(costs.mysql_s + costs.redis_s):
            self._ledger.restore_seats(coupon_id, self._issued(coupon_id) - issued)
        paused_s = max(0, now_ms - seen_at) / 1000 if seen_at else 0.0
        self._metrics.observe(metrics.SEATS_PAUSE, paused_s)
        logger.warning(
            "seat state rebuilt from MySQL",
            extra={"coupon_id": coupon_id, "issued": len(issued), "paused_s": paused_s},
        )
        return True

    def _issued(self, coupon_id: int) -> set[int]:
        with self._unit_of_work() as uow:
            return uow.issues.users_of(coupon_id)


def _has_time(seconds: float) -> bool:
    return time_budget.remaining_s() >= seconds + MARGIN_S
