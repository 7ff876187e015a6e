"""The composition root: clients and services built once per container, on first use."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property, lru_cache

import redis
from sqlalchemy import Engine

from couponcore.adapters.mysql import create_mysql_engine
from couponcore.adapters.redis_client import create_redis
from couponcore.config import Settings, get_settings
from couponcore.events import EventBus
from couponcore.services.coupons import CouponService
from couponcore.services.health import HealthService
from couponcore.services.sync_issue import SyncIssueService
from couponcore.unit_of_work import SqlUnitOfWork


@dataclass
class Container:
    settings: Settings

    @cached_property
    def engine(self) -> Engine:
        return create_mysql_engine(self.settings)

    @cached_property
    def redis(self) -> redis.Redis:
        return create_redis(self.settings)

    @cached_property
    def bus(self) -> EventBus:
        return EventBus()

    def unit_of_work(self) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, self.bus)

    @cached_property
    def sync_issue(self) -> SyncIssueService:
        return SyncIssueService(self.unit_of_work)

    @cached_property
    def coupons(self) -> CouponService:
        return CouponService(self.unit_of_work, self.redis)

    @cached_property
    def health(self) -> HealthService:
        return HealthService(self.engine, self.redis, extra_checks={})

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
