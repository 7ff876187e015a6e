"""Whether each dependency answers."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from couponcore.observability import logger

Probe = Callable[[], object]


@dataclass(frozen=True, slots=True)
class HealthReport:
    checks: dict[str, bool]

    @property
    def healthy(self) -> bool:
        return all(self.checks.values())


class HealthService:
    def __init__(self, probes: Mapping[str, Probe]) -> None:
        self._probes = dict(probes)

    def check(self) -> HealthReport:
        results: dict[str, bool] = {}
        for name, probe in self._probes.items():
            try:
                probe()
                results[name] = True
            except Exception as error:  # any failure means "does not answer"
                logger.warning("health check failed", extra={"dependency": name, "error": repr(error)})
                results[name] = False
        return HealthReport(results)
