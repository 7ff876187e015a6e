"""The composition root: the adapters and services of one container, built once, on first use.

Lambda and the local runtime wire the same real adapters (only endpoints and credentials differ, through
the configuration); unit tests build the services on the fakes of tests/unit/fakes.py instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

from aws_lambda_powertools.utilities.idempotency.persistence.cache import CachePersistenceLayer
from sqlalchemy import Engine

from couponcore import metrics
from couponcore.adapters import redis_keys
from couponcore.adapters.aws import worst_call_s
from couponcore.adapters.coupon_cache import TwoLevelCouponCatalog
from couponcore.adapters.emf_metrics import EmfMetrics
from couponcore.adapters.mysql import create_mysql_engine, ping_mysql, statement_timeout_s
from couponcore.adapters.redis_client import RedisClient, create_redis
from couponcore.adapters.redis_lock import LockTiming, RedisLock, RedisPassLock
from couponcore.adapters.reservations import RedisSeatStore
from couponcore.adapters.signing import ReservationSeal, secret_key
from couponcore.adapters.sqs_queue import SqsIssueQueue
from couponcore.adapters.unit_of_work import SqlUnitOfWork
from couponcore.config import Settings, get_settings
from couponcore.domain.coupon import Coupon, IssueMode
from couponcore.domain.events import CouponChanged, CouponIssueCompleted, SeatsReleased
from couponcore.observability import logger
from couponcore.services import time_budget
from couponcore.services.async_issue import AsyncIssueService
from couponcore.services.coupons import CouponService
from couponcore.services.health import HealthService, Probe
from couponcore.services.idempotent_issue import IdempotentIssue
from couponcore.services.message_bus import EventBus
from couponcore.services.persist import PersistService
from couponcore.services.reconcile import ReconcileService
from couponcore.services.sync_issue import SyncIssueService

RECONCILE_PASS_LEASE_S = 300


@dataclass
class Container:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return create_mysql_engine(self.settings)

    @cached_property
    def redis(self) -> RedisClient:
        return create_redis(self.settings)

    @cached_property
    def metrics(self) -> EmfMetrics:
        return EmfMetrics(self.settings.metrics_namespace, enabled=self.settings.metrics_enabled)

    @cached_property
    def bus(self) -> EventBus:
        bus = EventBus()
        # After commit: what the issue rules read must be fresh in Redis and in this container.
        for event_type in (CouponIssueCompleted, CouponChanged, SeatsReleased):
            bus.subscribe(event_type, self._refresh_cache)
        return bus

    @cached_property
    def refresh_worst_s(self) -> float:
        """A refresh reads the coupon (one statement), may open Redis (its secret, connect) and writes it."""
        settings = self.settings
        return statement_timeout_s(settings) + worst_call_s(settings.secrets_timeout_s) + 3 * settings.redis_timeout_s

    def _refresh_cache(self, event: CouponIssueCompleted | CouponChanged | SeatsReleased) -> None:
        if time_budget.remaining_s() < self.refresh_worst_s:
            # The answer must not wait for the cache: it catches up at its TTL (the Lua script and MySQL decide
            # every issue meanwhile).
            self.metrics.count(metrics.CACHE_REFRESH_FAILURES)
            logger.info("cache refresh skipped: not enough time left", extra={"coupon_id": event.coupon_id})
            return
        try:
            self.catalog.refresh(event.coupon_id)
        except Exception:
            # Counted here; the bus logs it and goes on. The commit stands: the cache catches up at its
            # TTL, and the Lua script and MySQL still decide every issue.
            self.metrics.count(metrics.CACHE_REFRESH_FAILURES)
            raise

    def unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.bus)

    @cached_property
    def seats(self) -> RedisSeatStore:
        return RedisSeatStore(self.redis)

    @cached_property
    def seal(self) -> ReservationSeal:
        return ReservationSeal(secret_key(self.settings.signing_secret_arn, self.settings.secrets_timeout_s))

    @cached_property
    def queue(self) -> SqsIssueQueue:
        settings = self.settings
        return SqsIssueQueue(
            settings.issue_queue_url, settings.sqs_timeout_s, self.seal, settings.dead_letter_queue_url
        )

    @cached_property
    def lock(self) -> RedisLock:
        return RedisLock(self.redis, LockTiming(wait_s=self.settings.lock_wait_s, lease_s=self.settings.lock_lease_s))

    @cached_property
    def catalog(self) -> TwoLevelCouponCatalog:
        return self.coupon_catalog(highest_id_check=True)

    def coupon_catalog(self, *, highest_id_check: bool) -> TwoLevelCouponCatalog:
        """The catalog the services use has the check; bench/simulate.py builds one without, to compare."""
        highest_id = self._highest_coupon_id if highest_id_check else None
        return TwoLevelCouponCatalog(
            self.redis, self._load_coupon, self._seats_taken, self.metrics, highest_id=highest_id
        )

    def _highest_coupon_id(self) -> int:
        with self.unit_of_work() as uow:
            return uow.coupons.highest_id()

    def _load_coupon(self, coupon_id: int) -> Coupon | None:
        with self.unit_of_work() as uow:
            return uow.coupons.get(coupon_id)

    def _seats_taken(self, coupon: Coupon) -> int:
        if coupon.issue_mode is IssueMode.ASYNC:
            return self.seats.seats_taken(coupon.id)
        return coupon.issued_quantity

    @cached_property
    def sync_issue(self) -> SyncIssueService:
        return SyncIssueService(self.unit_of_work)

    @cached_property
    def async_issue(self) -> AsyncIssueService:
        return AsyncIssueService(
            self.catalog,
            self.seats,
            self.queue,
            self.lock,
            bus=self.bus,
            metrics_sink=self.metrics,
            seat_call_s=self.settings.redis_timeout_s,
        )

    @cached_property
    def idempotent_issue(self) -> IdempotentIssue:
        routes = {"v2": self.async_issue.reserve_v2, "v1-async": self.async_issue.reserve_v1_async}
        store = CachePersistenceLayer(client=self.redis)  # type: ignore[arg-type]
        return IdempotentIssue(routes, store, self.settings.idempotency_ttl_s)

    @cached_property
    def coupons(self) -> CouponService:
        return CouponService(self.unit_of_work, self.seats)

    @cached_property
    def persist(self) -> PersistService:
        return PersistService(self.unit_of_work, self.seats, self.bus, self.metrics)

    @cached_property
    def reconcile(self) -> ReconcileService:
        # Held at most as long as a pass may run (ReconcileFunction's Timeout).
        pass_lock = RedisPassLock(self.redis, redis_keys.reconcile_pass(), lease_s=RECONCILE_PASS_LEASE_S)
        return ReconcileService(
            self.unit_of_work, self.seats, self.queue, self.metrics, pass_lock, grace_s=self.settings.reconcile_grace_s
        )

    @cached_property
    def health(self) -> HealthService:
        probes: dict[str, Probe] = {"mysql": lambda: ping_mysql(self.engine), "redis": self.redis.ping}
        if self.settings.issue_queue_url:
            probes["sqs"] = self.queue.ping
        return HealthService(probes)

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()


@lru_cache(maxsize=1)
def container() -> Container:
    return Container(get_settings())


def reset() -> None:
    """Forget every client and the settings (tests change the environment between cases)."""
    if container.cache_info().currsize:
        container().close()
    container.cache_clear()
    get_settings.cache_clear()
