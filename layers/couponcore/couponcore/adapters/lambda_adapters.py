"""The adapters of a deployed function: every port on MySQL, Redis, SQS and Secrets Manager, each client
built on first use (a function opens only what its requests need). The MySQL side (SQLAlchemy, the
repositories) is even imported on first use: the V2 path answers from Redis and loads it on a cache miss
only, so its cold start does not pay for it."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from couponcore.adapters import redis_keys
from couponcore.adapters.aws import worst_call_s
from couponcore.adapters.coupon_cache import HighestIdFilter, TwoLevelCouponCatalog
from couponcore.adapters.emf_metrics import EmfMetrics
from couponcore.adapters.fair_share import RedisFairShare
from couponcore.adapters.origin import OriginGuard, origin_guard
from couponcore.adapters.redis_client import RedisClient, create_redis
from couponcore.adapters.redis_lock import LockTiming, RedisLock, RedisPassLock
from couponcore.adapters.reservations import RedisSeatLedger, RedisSeatStore
from couponcore.adapters.signing import ReservationSeal, secret_key
from couponcore.adapters.sqs_queue import SqsIssueQueue
from couponcore.config import Settings
from couponcore.domain.coupon import Coupon
from couponcore.services.async_issue import lock_lease_s
from couponcore.services.health import Probe
from couponcore.services.message_bus import EventBus
from couponcore.services.reconcile import PASS_LEASE_S
from couponcore.services.recount import RecountCosts

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency.persistence.cache import CachePersistenceLayer
    from sqlalchemy import Engine

    from couponcore.adapters.repositories import SqlCouponReader
    from couponcore.adapters.unit_of_work import SqlUnitOfWork


class LambdaAdapters:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def engine(self) -> Engine:
        from couponcore.adapters.mysql import create_mysql_engine

        return create_mysql_engine(self.settings)

    @cached_property
    def redis(self) -> RedisClient:
        return create_redis(self.settings)

    @cached_property
    def metrics(self) -> EmfMetrics:
        return EmfMetrics(self.settings.metrics_namespace, enabled=self.settings.metrics_enabled)

    def unit_of_work(self, bus: EventBus) -> SqlUnitOfWork:
        from couponcore.adapters.unit_of_work import SqlUnitOfWork

        return SqlUnitOfWork(self.engine, bus)

    @cached_property
    def seats(self) -> RedisSeatStore:
        settings = self.settings
        return RedisSeatStore(
            self.redis, replica_acks=settings.redis_replica_acks, ack_timeout_ms=settings.redis_replica_ack_timeout_ms
        )

    @cached_property
    def fair_share(self) -> RedisFairShare:
        return RedisFairShare(self.redis, self.settings.issue_fair_share_per_s)

    @cached_property
    def ledger(self) -> RedisSeatLedger:
        return RedisSeatLedger(self.redis)

    @cached_property
    def reader(self) -> ReaderOnFirstRead:
        return ReaderOnFirstRead(self)

    @cached_property
    def sql_reader(self) -> SqlCouponReader:
        from couponcore.adapters.repositories import SqlCouponReader

        return SqlCouponReader(self.engine)

    @cached_property
    def catalog(self) -> TwoLevelCouponCatalog:
        id_filter = HighestIdFilter(self.redis, self.reader)
        return TwoLevelCouponCatalog(self.redis, self.reader, self.seats, self.metrics, id_filter)

    @cached_property
    def refresh_worst_s(self) -> float:
        """A refresh reads the coupon (one statement), may open Redis (its secret, connect) and writes it."""
        settings = self.settings
        return settings.statement_timeout_s + worst_call_s(settings.secrets_timeout_s) + 3 * settings.redis_timeout_s

    @cached_property
    def recount_costs(self) -> RecountCosts:
        settings = self.settings
        return RecountCosts(
            redis_s=settings.redis_timeout_s,
            queue_s=worst_call_s(settings.sqs_timeout_s),
            # The engine may open a connection for this read (reading its secret guards itself: adapters/aws.py).
            mysql_s=settings.db_connect_timeout_s + settings.statement_timeout_s,
        )

    @cached_property
    def origin_guard(self) -> OriginGuard:
        return origin_guard(self.settings.origin_verify_secret_arn, self.settings.secrets_timeout_s)

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
        settings = self.settings
        lease_s = lock_lease_s(settings.lock_lease_s, settings.redis_timeout_s)
        return RedisLock(self.redis, LockTiming(wait_s=settings.lock_wait_s, lease_s=lease_s))

    @cached_property
    def pass_lock(self) -> RedisPassLock:
        return RedisPassLock(self.redis, redis_keys.reconcile_pass(), lease_s=PASS_LEASE_S)

    @cached_property
    def idempotency_store(self) -> CachePersistenceLayer:
        from aws_lambda_powertools.utilities.idempotency.persistence.cache import CachePersistenceLayer

        return CachePersistenceLayer(client=self.redis)  # type: ignore[arg-type]

    @cached_property
    def probes(self) -> dict[str, Probe]:
        from couponcore.adapters.mysql import ping_mysql

        probes: dict[str, Probe] = {"mysql": lambda: ping_mysql(self.engine), "redis": self.redis.ping}
        if self.settings.issue_queue_url:
            probes["sqs"] = self.queue.ping
        return probes

    def close(self) -> None:
        if "engine" in self.__dict__:
            self.engine.dispose()
        if "redis" in self.__dict__:
            self.redis.close()


class ReaderOnFirstRead:
    """The catalog's coupon reader, whose engine is built (and SQLAlchemy imported) on the first read: a
    cache miss, or the highest-id check of an unknown coupon."""

    def __init__(self, adapters: LambdaAdapters) -> None:
        self._adapters = adapters

    def get(self, coupon_id: int) -> Coupon | None:
        return self._adapters.sql_reader.get(coupon_id)

    def highest_id(self) -> int:
        return self._adapters.sql_reader.highest_id()
