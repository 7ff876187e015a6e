"""Reconciliation: repairs what a crash or a Redis data loss left between Redis and MySQL.

- A reservation pending in Redis longer than the grace period, with no row in MySQL, was never sent
  (the process died between reserve and send) or its message was lost: send it again. batch_persist
  inserts idempotently, so a message that was merely slow costs nothing. Each reservation's resends are
  counted and spaced out (the grace period, then twice as long each time): during a long MySQL outage
  a reservation is not queued again on every pass, to end in the DLQ as copies.
- A pending entry whose row exists was persisted but not confirmed: clear it.
- A row in MySQL missing from the reserved set means Redis lost data (a lagging replica took over): the
  coupon sells nothing until its seats are recounted, exactly (services/recount.py). A coupon already
  paused is recounted here when it is time, as the issue path does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from couponcore import metrics
from couponcore.domain.clock import epoch_ms_now, utc_now
from couponcore.observability import logger
from couponcore.services.ports import Clock, IssueQueue, MetricsSink, PassLock, SeatLedger, UnitOfWorkFactory
from couponcore.services.recount import SeatRecount

# Coupons whose window ended longer ago than this are watched only while a reservation is pending.
WATCH_AFTER_END = timedelta(days=1)
# A settled coupon (window ended, nothing pending) keeps its Redis keys this long, then they expire:
# MySQL holds every outcome, so nothing is lost with them.
SETTLED_KEYS_TTL_S = 24 * 3600
# A pass starts no new coupon after this long, so its lock's lease can be short: a lock whose release failed
# (Redis read-only at that moment) stops the next passes for one lease only. A pass takes well under a second.
PASS_BUDGET_S = 40
# The lease: the budget, plus the last coupon's work at its dependencies' worst.
PASS_LEASE_S = PASS_BUDGET_S + 20


@dataclass
class ReconcileReport:
    coupons_checked: int = 0
    resent: int = 0
    confirmed: int = 0
    missing: int = 0  # seats MySQL issued that Redis did not hold: the coupon pauses until recounted
    recounted: list[int] = field(default_factory=list)  # coupons whose seats this pass rebuilt
    failed: list[int] = field(default_factory=list)  # coupons this pass could not check (retried next pass)
    skipped: bool = False  # another pass was running: this one did nothing
    resent_users: list[tuple[int, int]] = field(default_factory=list)

    @property
    def drift(self) -> int:
        return self.resent + self.confirmed + self.missing


class ReconcileService:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        ledger: SeatLedger,
        queue: IssueQueue,
        metrics_sink: MetricsSink,
        *,
        pass_lock: PassLock,
        recount: SeatRecount,
        grace_s: float,
        clock: Clock = utc_now,
        epoch_ms: Callable[[], int] = epoch_ms_now,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._ledger = ledger
        self._recount = recount
        self._metrics = metrics_sink
        self._epoch_ms = epoch_ms
        self._queue = queue
        self._pass_lock = pass_lock
        self._grace_ms = int(grace_s * 1000)
        self._clock = clock

    def run(self) -> ReconcileReport:
        """One pass, unless one is running already (a slow pass, a retried schedule, a pass by hand)."""
        with self._pass_lock.exclusive() as had:
            if not had:
                logger.info("reconciliation skipped: another pass is running")
                return ReconcileReport(skipped=True)
            return self._run()

    def _run(self) -> ReconcileReport:
        report = ReconcileReport()
        now = self._clock()
        with self._unit_of_work() as uow:
            windows = uow.coupons.async_windows()
        recent = [coupon_id for coupon_id, end in windows if end > now - WATCH_AFTER_END]
        long_ended = [coupon_id for coupon_id, end in windows if end <= now - WATCH_AFTER_END]
        for coupon_id in self._ledger.uncounted([coupon_id for coupon_id, end in windows if end > now]):
            try:
                if self._recount.try_rebuild(coupon_id):
                    report.recounted.append(coupon_id)
            except Exception:
                logger.exception("seats not recounted", extra={"coupon_id": coupon_id})
        started_ms = self._epoch_ms()
        for coupon_id in [*recent, *self._ledger.with_pending(long_ended)]:
            if self._epoch_ms() - started_ms > PASS_BUDGET_S * 1000:
                logger.warning("reconciliation cut short: the next pass goes on", extra={"coupon_id": coupon_id})
                break
            try:
                self._reconcile_coupon(coupon_id, report)
            except Exception:
                # One coupon's failure (a dependency blip, a bad entry) must not leave the others unchecked.
                logger.exception("coupon not reconciled", extra={"coupon_id": coupon_id})
                report.failed.append(coupon_id)
                continue
            report.coupons_checked += 1
        # Ended with nothing pending: no request can reserve any more, and MySQL holds every outcome.
        ended = [coupon_id for coupon_id, end in windows if end <= now]
        pending = set(self._ledger.with_pending(ended))
        self._ledger.let_expire([coupon_id for coupon_id in ended if coupon_id not in pending], SETTLED_KEYS_TTL_S)
        for kind, found in (("resent", report.resent), ("confirmed", report.confirmed), ("missing", report.missing)):
            if found:
                self._metrics.count(metrics.RECONCILE_FINDINGS, found, kind=kind)
        return report

    def _reconcile_coupon(self, coupon_id: int, report: ReconcileReport) -> None:
        # MySQL first: an issue is a held seat from its commit on, so one Redis misses afterwards was lost
        # (read the other way round, an issue persisted between the reads would look lost).
        with self._unit_of_work() as uow:
            issued = uow.issues.users_of(coupon_id)
            coupon = uow.coupons.get(coupon_id)
        pending = self._ledger.pending(coupon_id)
        holders = self._ledger.seat_holders(coupon_id)
        if coupon is not None and coupon.total_quantity is not None:
            left = coupon.total_quantity - max(len(holders), len(issued))
            self._metrics.set_gauge(metrics.REMAINING_STOCK, max(0, left), coupon_id=str(coupon_id))

        missing = issued - holders
        if missing:
            report.missing += len(missing)
            self._recount.lost(coupon_id, found_by="reconcile")

        persisted = [p.user_id for p in pending if p.user_id in issued]
        if persisted:
            self._ledger.confirm_persisted(coupon_id, persisted)
            report.confirmed += len(persisted)

        now_ms = self._epoch_ms()
        stale = {
            p.user_id: p for p in pending if p.user_id not in issued and p.reserved_at_ms <= now_ms - self._grace_ms
        }
        records = self._ledger.resend_records(coupon_id, list(stale))
        due = [user for user, record in records.items() if record.is_due(now_ms, self._grace_ms)]
        lost = [stale[user].message() for user in due]
        if lost:
            self._queue.send_many(lost)
            self._ledger.record_resends(coupon_id, due, now_ms)
            report.resent += len(lost)
            report.resent_users.extend((coupon_id, m.user_id) for m in lost)
            logger.warning(
                "resent reservations that never reached MySQL",
                extra={"coupon_id": coupon_id, "count": len(lost), "user_ids": [m.user_id for m in lost[:20]]},
            )
