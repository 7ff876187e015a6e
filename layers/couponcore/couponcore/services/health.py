"""Whether each dependency answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import redis
from sqlalchemy import Engine, text

from couponcore.observability import logger


@dataclass(frozen=True, slots=True)
class HealthReport:
    checks: dict[str, bool]

    @property
    def healthy(self) -> bool:
        return all(self.checks.values())


class HealthService:
    def __init__(
        self, engine: Engine, redis_client: redis.Redis, extra_checks: Mapping[str, Callable[[], object]]
    ) -> None:
        self._checks: dict[str, Callable[[], object]] = {
            "mysql": lambda: self._ping_mysql(engine),
            "redis": redis_client.ping,
            **extra_checks,
        }

    @staticmethod
    def _ping_mysql(engine: Engine) -> None:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))

    def check(self) -> HealthReport:
        results: dict[str, bool] = {}
        for name, probe in self._checks.items():
            try:
                probe()
                results[name] = True
            except Exception as error:  # any failure means "does not answer"
                logger.warning("health check failed", extra={"dependency": name, "error": repr(error)})
                results[name] = False
        return HealthReport(results)
