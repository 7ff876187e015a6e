"""Whether each dependency answers, all asked at once and each given a short time: a readiness probe
must answer well before its caller gives up, whatever hangs behind it. The routes are public, so a report
serves every request of its container for REPORT_TTL_S: a flood of health checks costs the dependencies at
most one probe each per container every two seconds."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from couponcore.observability import logger

Probe = Callable[[], object]

# How long a dependency has to answer before it counts as down.
PROBE_TIMEOUT_S = 2.0
REPORT_TTL_S = 2.0


@dataclass(frozen=True, slots=True)
class HealthReport:
    checks: dict[str, bool]

    @property
    def healthy(self) -> bool:
        return all(self.checks.values())


class HealthService:
    def __init__(
        self,
        probes: Mapping[str, Probe],
        timeout_s: float = PROBE_TIMEOUT_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probes = dict(probes)
        self._timeout_s = timeout_s
        self._monotonic = monotonic
        self._last: tuple[float, HealthReport] | None = None  # when it was made, and the report

    def check(self) -> HealthReport:
        """The last report while it is younger than REPORT_TTL_S, else a fresh one."""
        now = self._monotonic()
        if self._last is not None and now - self._last[0] < REPORT_TTL_S:
            return self._last[1]
        report = self._probe_all()
        self._last = (self._monotonic(), report)
        return report

    def _probe_all(self) -> HealthReport:
        pool = ThreadPoolExecutor(max_workers=max(1, len(self._probes)), thread_name_prefix="health")
        futures = {name: pool.submit(probe) for name, probe in self._probes.items()}
        wait(futures.values(), timeout=self._timeout_s)
        pool.shutdown(wait=False)  # a probe still hanging ends at its client's own timeout, unwatched
        return HealthReport({name: self._answered(name, future) for name, future in futures.items()})

    def _answered(self, name: str, future: Future[object]) -> bool:
        if not future.done():
            logger.warning("health check timed out", extra={"dependency": name, "timeout_s": self._timeout_s})
            return False
        error = future.exception()
        if error is not None:  # any failure means "does not answer"
            logger.warning("health check failed", extra={"dependency": name, "error": repr(error)})
            return False
        return True
