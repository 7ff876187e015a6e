"""The readiness probe: every dependency asked at once, a hanging one counted down within the timeout."""

from __future__ import annotations

import threading
import time

from couponcore.services.health import REPORT_TTL_S, HealthService


def test_a_hanging_dependency_is_down_within_the_timeout_and_the_others_are_still_asked() -> None:
    release = threading.Event()

    def refuses() -> None:
        raise ConnectionError("refused")

    service = HealthService({"mysql": lambda: None, "redis": release.wait, "sqs": refuses}, timeout_s=0.2)
    started = time.monotonic()
    report = service.check()
    elapsed = time.monotonic() - started
    release.set()
    assert report.checks == {"mysql": True, "redis": False, "sqs": False}
    assert not report.healthy
    assert elapsed < 2.0  # the probes ran side by side, and nobody waited for the hanging one (it never ends)


def test_all_answering_is_healthy() -> None:
    assert HealthService({"mysql": lambda: None, "redis": lambda: True}).check().healthy


def test_a_report_serves_its_container_for_two_seconds_then_the_dependencies_are_asked_again() -> None:
    asked: list[str] = []
    now = [0.0]
    service = HealthService({"mysql": lambda: asked.append("mysql")}, monotonic=lambda: now[0])
    first = service.check()
    now[0] = REPORT_TTL_S - 0.01
    assert [service.check() for _ in range(100)] == [first] * 100
    assert asked == ["mysql"]
    now[0] = REPORT_TTL_S + 0.01
    service.check()
    assert asked == ["mysql", "mysql"]
