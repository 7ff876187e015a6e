"""V1: issue synchronously in one MySQL transaction holding the coupon row."""

from __future__ import annotations

from typing import Literal

from couponcore import metrics
from couponcore.domain.clock import utc_now
from couponcore.domain.coupon import IssueMode
from couponcore.domain.errors import CouponError, DependencyUnavailableError, ErrorCode
from couponcore.domain.events import CouponIssueCompleted
from couponcore.observability import logger
from couponcore.services.coupons import IssueStatus
from couponcore.services.ports import Clock, FairShare, MetricsSink, UnitOfWorkFactory


class SyncIssueService:
    def __init__(
        self,
        unit_of_work: UnitOfWorkFactory,
        fair_share: FairShare,
        metrics_sink: MetricsSink,
        clock: Clock = utc_now,
    ) -> None:
        self._unit_of_work = unit_of_work
        self._fair_share = fair_share
        self._metrics = metrics_sink
        self._clock = clock

    def issue(self, coupon_id: int, user_id: int) -> Literal[IssueStatus.ISSUED]:
        """Issue the coupon to the user (the answer: ISSUED) or raise the CouponError that says why not."""
        if not self._within_fair_share(coupon_id, user_id):
            raise CouponError(ErrorCode.TOO_MANY_REQUESTS)
        now = self._clock()
        with self._unit_of_work() as uow:
            outcome = uow.issue_sync_and_commit(coupon_id, user_id, now)
            coupon = outcome.coupon_before
            if coupon is None:
                raise CouponError(ErrorCode.COUPON_NOT_EXIST)
            # The domain names the outcome from the row as it was locked: mode, quantity, window, then
            # the duplicate (the row was not written although the rules allowed it).
            refusal = coupon.issue_refusal(now, mode=IssueMode.SYNC, already_issued=not outcome.inserted)
            if refusal is not None and outcome.inserted:
                # The SQL guard and the domain disagree: the row is committed, so it stands.
                logger.error("V1 rule mismatch", extra={"coupon_id": coupon_id, "user_id": user_id})
                refusal = None
            if refusal is None and not coupon.has_quantity_left(coupon.issued_quantity + 1):
                uow.raise_event(CouponIssueCompleted(coupon_id))
        if refusal is not None:
            raise CouponError(refusal)
        return IssueStatus.ISSUED

    def _within_fair_share(self, coupon_id: int, user_id: int) -> bool:
        """Counted before the row lock, so a user hammering V1 waits in no one else's queue. V1 needs only
        MySQL: when Redis cannot count, the request goes on unlimited rather than fail."""
        try:
            return self._fair_share.admit(coupon_id, user_id)
        except DependencyUnavailableError as error:
            self._metrics.count(metrics.DEPENDENCY_ERRORS, dependency=error.dependency)
            logger.warning("fair share not counted", extra={"coupon_id": coupon_id, "error": str(error)})
            return True
