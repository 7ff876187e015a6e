"""batch_persist: reservations from SQS become issues in MySQL, one transaction per coupon.

MySQL is the last line of defence: a coupon never holds more rows than its total, even if Redis was
wrong (say, after a failover). A reservation MySQL refuses for good is released in Redis and marked
REJECTED, so its user learns the truth from the status route.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from couponcore import metrics
from couponcore.domain.clock import epoch_ms_now, from_epoch_ms, to_epoch_us, utc_now
from couponcore.domain.coupon import BatchCut, IssueMode, first_come_cut
from couponcore.domain.errors import DependencyUnavailableError
from couponcore.domain.events import CouponIssueCompleted, SeatsReleased
from couponcore.domain.reservation import PendingReservation, ReservationMessage
from couponcore.observability import logger
from couponcore.services.message_bus import EventBus
from couponcore.services.ports import Clock, IssuedFacts, MetricsSink, SeatLedger, SeatStore, UnitOfWorkFactory
from couponcore.services.recount import SeatRecount


@dataclass(frozen=True, slots=True)
class PersistReport:
    failed_coupons: dict[int, Exception]  # coupon id -> why its records must be retried
    inserted: int
    already_issued: int
    rejected: int


@dataclass(frozen=True, slots=True)
class CouponBatchOutcome:
    inserted: list[int]  # users whose issue this transaction wrote
    already_issued: list[int]  # users MySQL already held (a redelivered message)
    refused: list[int]  # users refused for good: no seat left, or no such ASYNC coupon
    sold_out: bool  # the coupon has no seat left after this transaction
    sold_by_redis: bool  # an ASYNC coupon: Redis counted its seats
    expires: dict[int, datetime | None] = field(default_factory=dict)  # each inserted issue's dateExpire


class PersistService:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        seats: SeatStore,
        ledger: SeatLedger,
        *,
        recount: SeatRecount,
        bus: EventBus,
        metrics_sink: MetricsSink,
        clock: Clock = utc_now,
    ) -> None:
        self._recount = recount
        self._unit_of_work = unit_of_work
        self._seats = seats
        self._ledger = ledger
        self._bus = bus
        self._metrics = metrics_sink
        self._clock = clock

    def persist(self, messages: Iterable[ReservationMessage]) -> PersistReport:
        by_coupon: dict[int, list[ReservationMessage]] = defaultdict(list)
        for message in messages:
            by_coupon[message.coupon_id].append(message)
        failed: dict[int, Exception] = {}
        inserted = already = rejected = 0
        for coupon_id, group in by_coupon.items():
            try:
                counts = self._persist_coupon(coupon_id, group)
            except Exception as error:  # a dependency or a bug: this coupon's records are retried, the others go on
                logger.warning("coupon batch not persisted", extra={"coupon_id": coupon_id, "error": repr(error)})
                failed[coupon_id] = error
                continue
            inserted, already, rejected = inserted + counts[0], already + counts[1], rejected + counts[2]
        return PersistReport(failed, inserted, already, rejected)

    def _persist_coupon(self, coupon_id: int, group: list[ReservationMessage]) -> tuple[int, int, int]:
        result = self._decide_and_write(coupon_id, [(m.user_id, from_epoch_ms(m.reserved_at_ms)) for m in group])
        try:
            self._tell_redis(coupon_id, group, result)
        except DependencyUnavailableError as error:
            # MySQL decided and committed: the records are done. Redis learns it from reconciliation (a pending
            # entry with a row is cleared, one refused is resent and refused again); sending the records back to
            # the queue would keep it from emptying for a visibility timeout, and a recount waiting on it.
            logger.warning("persisted, but Redis not told", extra={"coupon_id": coupon_id, "error": str(error)})
        if result.refused:
            self._bus.publish_all([SeatsReleased(coupon_id)])
        self._record(group, result.inserted, len(result.already_issued), len(result.refused))
        return len(result.inserted), len(result.already_issued), len(result.refused)

    def _tell_redis(self, coupon_id: int, group: list[ReservationMessage], result: CouponBatchOutcome) -> None:
        """After commit: Redis learns what MySQL decided."""
        seats = {m.user_id: PendingReservation(coupon_id, m.user_id, m.token, m.reserved_at_ms) for m in group}
        # An issue is dated by its reservation (as the row is); a redelivered one's row may be older, so the
        # status route reads that date from MySQL.
        facts = {
            user_id: IssuedFacts(seats[user_id].reserved_at_ms * 1000, _epoch_us_or_none(result.expires.get(user_id)))
            for user_id in result.inserted
        }
        unheld = self._ledger.confirm_persisted(coupon_id, [*result.inserted, *result.already_issued], facts)
        for user_id in result.refused:
            if self._seats.release(seats[user_id], rejected=True):
                self._metrics.count(metrics.RESERVATIONS_RELEASED, reason="rejected")
            logger.warning("reservation rejected by MySQL", extra={"coupon_id": coupon_id, "user_id": user_id})
        if result.sold_by_redis and (unheld or result.refused):
            # MySQL holds issues Redis does not, or Redis let more through than there are seats: its state
            # is incomplete (a lagging replica took over, keys were lost). It sells nothing more until it is
            # recounted, exactly (services/recount.py).
            self._recount.lost(coupon_id, found_by="batch_persist")

    def _decide_and_write(self, coupon_id: int, reservations: list[tuple[int, datetime]]) -> CouponBatchOutcome:
        """One transaction, the coupon row locked once: the domain's first-come cut over what is not yet
        issued, as far as the seats left go; the refusals recorded with the decision."""
        users = [user for user, _ in reservations]
        with self._unit_of_work() as uow:
            coupon, already = uow.lock_for_persist(coupon_id, users)
            if coupon is None or coupon.issue_mode is not IssueMode.ASYNC:
                return CouponBatchOutcome([], [], users, sold_out=False, sold_by_redis=False)
            cut: BatchCut = first_come_cut(reservations, already, coupon.seats_left())
            # Each issue's expiry is fixed now, from its own date (its reservation's).
            expires = {user: coupon.expiry_for(at) for user, at in cut.accepted}
            sold_out = not coupon.has_quantity_left(coupon.issued_quantity + len(cut.accepted))
            if sold_out and cut.accepted:
                uow.raise_event(CouponIssueCompleted(coupon_id))
            # The refusals are final and recorded with the decision: the status route reads them whatever
            # Redis still knows.
            issues = [(user, at, expires[user]) for user, at in cut.accepted]
            uow.persist_and_commit(coupon_id, issues, cut.refused, self._clock())
        accepted = [user for user, _ in cut.accepted]
        return CouponBatchOutcome(accepted, sorted(already), cut.refused, sold_out, sold_by_redis=True, expires=expires)

    def _record(self, group: list[ReservationMessage], inserted: list[int], already: int, refused: int) -> None:
        self._metrics.count(metrics.PERSISTED_ROWS, len(inserted))
        if already:
            self._metrics.count(metrics.REDELIVERED_RECORDS, already)
        if refused:
            self._metrics.count(metrics.RESERVATIONS_REJECTED, refused)
        if inserted:
            # One observation a batch, its oldest row's: how far persistence is behind (one per row would be
            # a hundred metric calls a batch, the largest of its costs after MySQL and Redis).
            written = set(inserted)
            oldest_ms = min(m.reserved_at_ms for m in group if m.user_id in written)
            self._metrics.observe(metrics.PERSIST_LAG, max(0.0, (epoch_ms_now() - oldest_ms) / 1000))


def _epoch_us_or_none(value: datetime | None) -> int | None:
    return None if value is None else to_epoch_us(value)
