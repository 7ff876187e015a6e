"""The composition root: one container's service graph, wired explicitly from one set of adapters.

``Services`` builds every service from an ``Adapters`` (an implementation of each port): ``LambdaAdapters``
in Lambda and the local runtime (MySQL, Redis, SQS; only endpoints and credentials differ, through the
configuration), the in-memory fakes of tests/unit/fakes.py in unit tests. Both are lazy: a function builds
only what its first request needs. Entry points reach the graph through ``services()``; nothing below them
does.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property, lru_cache
from typing import Generic, Protocol, TypeVar

from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer

from couponcore import metrics
from couponcore.adapters.idempotency import IdempotentIssue
from couponcore.adapters.lambda_adapters import LambdaAdapters
from couponcore.config import Settings, get_settings
from couponcore.domain.clock import epoch_ms_now, utc_now
from couponcore.domain.events import CouponChanged, CouponIssueCompleted, SeatsReleased
from couponcore.domain.issue_route import IssueRoute
from couponcore.observability import logger
from couponcore.services import time_budget
from couponcore.services.async_issue import AsyncIssueService
from couponcore.services.coupon_use import CouponUseService
from couponcore.services.coupons import CouponService
from couponcore.services.health import HealthService, Probe
from couponcore.services.message_bus import EventBus
from couponcore.services.persist import PersistService
from couponcore.services.ports import (
    Clock,
    CouponCatalog,
    CouponLock,
    FairShare,
    IssueQueue,
    MetricsSink,
    PassLock,
    SeatLedger,
    SeatStore,
    UnitOfWork,
)
from couponcore.services.reconcile import ReconcileService
from couponcore.services.recount import RecountCosts, SeatRecount
from couponcore.services.sync_issue import SyncIssueService


class Adapters(Protocol):
    """One implementation of every port the services need."""

    @property
    def metrics(self) -> MetricsSink: ...
    @property
    def seats(self) -> SeatStore: ...
    @property
    def ledger(self) -> SeatLedger: ...
    @property
    def fair_share(self) -> FairShare: ...
    @property
    def catalog(self) -> CouponCatalog: ...
    @property
    def queue(self) -> IssueQueue: ...
    @property
    def lock(self) -> CouponLock: ...
    @property
    def pass_lock(self) -> PassLock: ...
    @property
    def idempotency_store(self) -> BasePersistenceLayer: ...
    @property
    def probes(self) -> dict[str, Probe]: ...
    @property
    def refresh_worst_s(self) -> float:
        """The longest a cache refresh after commit can take (it is skipped when less time is left)."""
        ...

    @property
    def recount_costs(self) -> RecountCosts: ...

    def unit_of_work(self, bus: EventBus) -> UnitOfWork: ...
    def close(self) -> None: ...


A = TypeVar("A", bound=Adapters)


class Services(Generic[A]):
    def __init__(
        self,
        settings: Settings,
        adapters: A,
        *,
        clock: Clock = utc_now,
        epoch_ms: Callable[[], int] = epoch_ms_now,
    ) -> None:
        self.settings = settings
        self.adapters = adapters
        self._clock = clock
        self._epoch_ms = epoch_ms

    @property
    def metrics(self) -> MetricsSink:
        return self.adapters.metrics

    @cached_property
    def bus(self) -> EventBus:
        bus = EventBus()
        # After commit: what the issue rules read must be fresh in Redis and in this container.
        bus.subscribe(CouponIssueCompleted, self._refresh_cache)
        bus.subscribe(CouponChanged, self._count_new_coupon)
        bus.subscribe(CouponChanged, self._refresh_cache)
        bus.subscribe(SeatsReleased, self._forget_sold_out)
        return bus

    def unit_of_work(self) -> UnitOfWork:
        return self.adapters.unit_of_work(self.bus)

    def _refresh_cache(self, event: CouponIssueCompleted | CouponChanged) -> None:
        if time_budget.remaining_s() < self.adapters.refresh_worst_s:
            # The answer must not wait for the cache: it catches up at its TTL (the Lua script and MySQL decide
            # every issue meanwhile).
            self.metrics.count(metrics.CACHE_REFRESH_FAILURES)
            logger.info("cache refresh skipped: not enough time left", extra={"coupon_id": event.coupon_id})
            return
        try:
            self.adapters.catalog.refresh(event.coupon_id)
        except Exception:
            # Counted here; the bus logs it and goes on. The commit stands: the cache catches up at its TTL,
            # and the Lua script and MySQL still decide every issue.
            self.metrics.count(metrics.CACHE_REFRESH_FAILURES)
            raise

    def _count_new_coupon(self, event: CouponChanged) -> None:
        """A coupon just created has a complete (empty) seat state; should this fail, its first requests find
        it uncounted and recount it (a short pause)."""
        self.recount.count_new(event.coupon_id)

    def _forget_sold_out(self, event: SeatsReleased) -> None:
        try:
            self.adapters.catalog.forget_sold_out(event.coupon_id)
        except Exception:
            # A "sold out" left behind expires within the catalog's SOLD_OUT_REDIS_TTL_S.
            self.metrics.count(metrics.CACHE_REFRESH_FAILURES)
            raise

    @cached_property
    def recount(self) -> SeatRecount:
        adapters = self.adapters
        return SeatRecount(
            self.unit_of_work,
            adapters.ledger,
            adapters.queue,
            self.metrics,
            longest_stay_s=self.settings.queue_longest_stay_s,
            costs=adapters.recount_costs,
            epoch_ms=self._epoch_ms,
        )

    @cached_property
    def sync_issue(self) -> SyncIssueService:
        return SyncIssueService(self.unit_of_work, self.adapters.fair_share, self.metrics, clock=self._clock)

    @cached_property
    def async_issue(self) -> AsyncIssueService:
        adapters = self.adapters
        return AsyncIssueService(
            adapters.catalog,
            adapters.seats,
            adapters.queue,
            adapters.lock,
            self.recount,
            fair_share=adapters.fair_share,
            bus=self.bus,
            metrics_sink=self.metrics,
            seat_call_s=self.settings.redis_timeout_s,
            clock=self._clock,
            epoch_ms=self._epoch_ms,
        )

    @cached_property
    def idempotent_issue(self) -> IdempotentIssue:
        routes = {IssueRoute.V2: self.async_issue.reserve_v2, IssueRoute.V1_ASYNC: self.async_issue.reserve_v1_async}
        return IdempotentIssue(routes, self.adapters.idempotency_store, self.settings.idempotency_ttl_s)

    @cached_property
    def coupons(self) -> CouponService:
        return CouponService(self.unit_of_work, self.adapters.seats, clock=self._clock)

    @cached_property
    def coupon_use(self) -> CouponUseService:
        return CouponUseService(self.unit_of_work, self.adapters.seats, self.metrics, clock=self._clock)

    @cached_property
    def persist(self) -> PersistService:
        adapters = self.adapters
        return PersistService(
            self.unit_of_work,
            adapters.seats,
            adapters.ledger,
            recount=self.recount,
            bus=self.bus,
            metrics_sink=self.metrics,
            clock=self._clock,
        )

    @cached_property
    def reconcile(self) -> ReconcileService:
        adapters = self.adapters
        return ReconcileService(
            self.unit_of_work,
            adapters.ledger,
            adapters.queue,
            self.metrics,
            pass_lock=adapters.pass_lock,
            recount=self.recount,
            grace_s=self.settings.reconcile_grace_s,
            clock=self._clock,
            epoch_ms=self._epoch_ms,
        )

    @cached_property
    def health(self) -> HealthService:
        return HealthService(self.adapters.probes)

    def close(self) -> None:
        self.adapters.close()


DeployedServices = Services[LambdaAdapters]


def build(settings: Settings) -> DeployedServices:
    """A graph on the real adapters (tests and tools build more than one, each with its own clients)."""
    return Services(settings, LambdaAdapters(settings))


@lru_cache(maxsize=1)
def services() -> DeployedServices:
    """This function's graph, built on first use."""
    return build(get_settings())


def reset() -> None:
    """Forget every client and the settings (tests change the environment between cases)."""
    if services.cache_info().currsize:
        services().close()
    services.cache_clear()
    get_settings.cache_clear()
