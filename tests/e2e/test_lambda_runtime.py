"""The local Lambda runtime keeps Lambda's rules: one invocation per container at a time, the function's
Timeout, its reserved concurrency, and containers that die are replaced. Runs a test function
(runtime_fixture/) under AWS's runtime interface client, behind the local HTTP API."""

from __future__ import annotations

import itertools
import os
import signal
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from localdev.stack import BackgroundStack, LocalDeployment, StackOptions
from tests.support.network import free_port
from tests.support.sqs import wait_until

FIXTURE = Path(__file__).resolve().parent / "runtime_fixture" / "template.yaml"
FUNCTION = "SleeperFunction"
INTERNAL_ERROR = (500, {"message": "Internal Server Error"})


@pytest.fixture(scope="module")
def stack() -> Iterator[BackgroundStack]:
    running = BackgroundStack(LocalDeployment(FIXTURE, StackOptions(port=free_port(), workers=False))).start()
    yield running
    running.stop()


def sleep(stack: BackgroundStack, seconds: float) -> httpx.Response:
    return httpx.post(f"{stack.url}/sleep", json={"sleep": seconds}, timeout=30)


def answered(response: httpx.Response) -> tuple[int, Any]:
    return response.status_code, response.json()


def test_concurrent_requests_run_in_separate_containers_one_at_a_time(stack: BackgroundStack) -> None:
    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(lambda _: sleep(stack, 0.5), range(2))
    reports = [first.json(), second.json()]
    assert first.status_code == second.status_code == 200
    assert reports[0]["pid"] != reports[1]["pid"]  # two containers, two processes
    assert all(r["greeting"] == "from-the-template" for r in reports)  # the template's environment
    # Many more, two at a time: no container ever ran two invocations that overlap.
    with ThreadPoolExecutor(max_workers=2) as pool:
        reports += [r.json() for r in pool.map(lambda _: sleep(stack, 0.05), range(20))]
    by_process: dict[int, list[tuple[float, float]]] = {}
    for report in reports:
        by_process.setdefault(report["pid"], []).append((report["started"], report["ended"]))
    for windows in by_process.values():
        windows.sort()
        assert all(earlier[1] <= later[0] for earlier, later in itertools.pairwise(windows))
    assert len(by_process) <= 2  # warm containers were reused, never more than the reserved concurrency


def test_the_deadline_is_the_function_s_timeout(stack: BackgroundStack) -> None:
    remaining = sleep(stack, 0).json()["remainingMs"]
    assert 1_500 < remaining <= 2_000  # Timeout: 2 in the template


def test_an_invocation_past_its_timeout_is_stopped_and_answered_as_api_gateway_does(stack: BackgroundStack) -> None:
    timeouts = stack.stack.runtime.stats(FUNCTION).timeouts
    started = time.monotonic()
    response = sleep(stack, 10)
    assert answered(response) == INTERNAL_ERROR
    assert time.monotonic() - started < 5  # stopped at the 2 s Timeout, not after the 10 s sleep
    assert stack.stack.runtime.stats(FUNCTION).timeouts == timeouts + 1
    after = sleep(stack, 0)
    assert after.status_code == 200  # a fresh container serves the next request


def test_requests_over_the_reserved_concurrency_are_throttled(stack: BackgroundStack) -> None:
    throttles = stack.stack.runtime.stats(FUNCTION).throttles
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(pool.map(lambda _: sleep(stack, 1.0), range(4)))
    assert sorted(r.status_code for r in responses) == [200, 200, 500, 500]
    assert all(answered(r) == INTERNAL_ERROR for r in responses if r.status_code == 500)
    assert stack.stack.runtime.stats(FUNCTION).throttles == throttles + 2
    assert stack.stack.runtime.stats(FUNCTION).peak_concurrency == 2


def test_a_container_killed_mid_invocation_fails_that_request_and_is_replaced(stack: BackgroundStack) -> None:
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(sleep, stack, 5)

        def busy_container() -> bool:
            return any(c.current is not None for c in stack.stack.runtime.containers(FUNCTION))

        wait_until(busy_container, timeout_s=10, what="an invocation in progress")
        victim = next(c for c in stack.stack.runtime.containers(FUNCTION) if c.current is not None)
        assert victim.process is not None
        os.kill(victim.process.pid, signal.SIGKILL)
        assert answered(pending.result()) == INTERNAL_ERROR
    assert victim.id not in {c.id for c in stack.stack.runtime.containers(FUNCTION)}
    after = sleep(stack, 0)
    assert after.status_code == 200 and after.json()["pid"] != victim.process.pid


def test_idle_containers_are_stopped() -> None:
    options = StackOptions(port=free_port(), workers=False, idle_timeout_s=0.5)
    short_lived = BackgroundStack(LocalDeployment(FIXTURE, options)).start()
    try:
        first = sleep(short_lived, 0).json()
        assert short_lived.stack.runtime.stats(FUNCTION).cold_starts == 1
        wait_until(lambda: not short_lived.stack.runtime.containers(FUNCTION), timeout_s=10, what="idle stop")
        with pytest.raises(ProcessLookupError):
            os.kill(first["pid"], 0)
        assert sleep(short_lived, 0).json()["pid"] != first["pid"]  # a cold start again
        assert short_lived.stack.runtime.stats(FUNCTION).cold_starts == 2
    finally:
        short_lived.stop()
