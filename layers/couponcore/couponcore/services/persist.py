"""batch_persist: reservations from SQS become issues in MySQL, one transaction per coupon.

MySQL is the last line of defence: a coupon never holds more rows than its total, even if Redis was
wrong (say, after a failover). A reservation MySQL refuses for good is released in Redis and marked
REJECTED, so its user learns the truth from the status route.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from couponcore import metrics
from couponcore.adapters.issue_queue import ReservationMessage
from couponcore.adapters.reservations import ReservationStore
from couponcore.domain.events import CouponIssueCompleted, SeatsReleased
from couponcore.events import EventBus
from couponcore.observability import logger
from couponcore.unit_of_work import SqlUnitOfWork


@dataclass(frozen=True, slots=True)
class PersistReport:
    failed_coupons: dict[int, Exception]  # coupon id -> why its records must be retried
    inserted: int
    already_issued: int
    rejected: int


class PersistService:
    def __init__(
        self, unit_of_work: Callable[[], SqlUnitOfWork], reservations: ReservationStore, bus: EventBus
    ) -> None:
        self._unit_of_work = unit_of_work
        self._reservations = reservations
        self._bus = bus

    def persist(self, messages: Iterable[ReservationMessage]) -> PersistReport:
        by_coupon: dict[int, list[ReservationMessage]] = defaultdict(list)
        for message in messages:
            by_coupon[message.coupon_id].append(message)
        failed: dict[int, Exception] = {}
        inserted = already = rejected = 0
        for coupon_id, group in by_coupon.items():
            try:
                counts = self._persist_coupon(coupon_id, group)
            except Exception as error:  # this coupon's records are retried; the other coupons go on
                logger.warning("coupon batch not persisted", extra={"coupon_id": coupon_id, "error": repr(error)})
                failed[coupon_id] = error
                continue
            inserted, already, rejected = inserted + counts[0], already + counts[1], rejected + counts[2]
        return PersistReport(failed, inserted, already, rejected)

    def _persist_coupon(self, coupon_id: int, group: list[ReservationMessage]) -> tuple[int, int, int]:
        reservations = [(m.user_id, _utc(m.reserved_at_ms)) for m in group]
        with self._unit_of_work() as uow:
            result = uow.batch.persist(coupon_id, reservations)
            if result.sold_out and result.inserted:
                uow.raise_event(CouponIssueCompleted(coupon_id))
            uow.commit()
        # After commit: Redis learns what MySQL decided. Should this fail, SQS redelivers the records and
        # the same decisions are found again (inserts are idempotent), or reconciliation tidies up.
        self._reservations.confirm_persisted(coupon_id, [*result.inserted, *result.already_issued])
        tokens = {m.user_id: m.token for m in group}
        for user_id in result.refused:
            if self._reservations.release(coupon_id, user_id, tokens[user_id], rejected=True):
                metrics.count(metrics.RESERVATIONS_RELEASED, reason="rejected")
            logger.warning("reservation rejected by MySQL", extra={"coupon_id": coupon_id, "user_id": user_id})
        if result.refused:
            # Redis let more through than MySQL holds (it lost data): put MySQL's issues back in the reserved
            # set now, rather than at the next reconciliation, so Redis stops answering RESERVED for seats
            # that do not exist; then the cache learns the coupon's real state.
            with self._unit_of_work() as uow:
                issued = uow.issues.users_of(coupon_id)
            self._reservations.restore_seats(coupon_id, issued)
            self._bus.publish_all([SeatsReleased(coupon_id)])
        self._record(group, result.inserted, len(result.already_issued), len(result.refused))
        return len(result.inserted), len(result.already_issued), len(result.refused)

    @staticmethod
    def _record(group: list[ReservationMessage], inserted: list[int], already: int, refused: int) -> None:
        metrics.count(metrics.PERSISTED_ROWS, len(inserted))
        if already:
            metrics.count(metrics.REDELIVERED_RECORDS, already)
        if refused:
            metrics.count(metrics.RESERVATIONS_REJECTED, refused)
        now_ms = time.time() * 1000
        reserved_at = {m.user_id: m.reserved_at_ms for m in group}
        for user_id in inserted:
            metrics.observe(metrics.PERSIST_LAG, max(0.0, (now_ms - reserved_at[user_id]) / 1000))


def _utc(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).replace(tzinfo=None)
