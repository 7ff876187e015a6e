"""The local stack started as `make run` starts it (a process of its own, on a free port)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from couponcore.config import Settings
from tests.support.network import free_port

ROOT = Path(__file__).resolve().parents[2]


def start_server(log_path: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ISSUE_QUEUE_NAME": f"coupon-e2e-{uuid.uuid4().hex[:12]}"}
    env.pop("ISSUE_QUEUE_URL", None)
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "localdev.api_server", "--port", str(port), *extra],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=5).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.terminate()
            pytest.fail(f"local stack did not start:\n{log_path.read_text()[-5000:]}")
        time.sleep(0.2)


def stop_server(server: subprocess.Popen[bytes]) -> None:
    server.terminate()
    server.wait(timeout=30)


# Package scope: each stack stops when the e2e tests are done, so that its reconcile schedule and its queue
# poller do not run on the shared database, Redis and queue under the tests that follow.
@pytest.fixture(scope="package")
def api_url(migrated_database: Settings, sqs_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The stack as deployed: identity on, tokens verified."""
    server, url = start_server(tmp_path_factory.mktemp("stack") / "stack.log")
    yield url
    stop_server(server)


@pytest.fixture(scope="package")
def api_url_dev(
    migrated_database: Settings, sqs_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """`LOCAL_AUTH=dev make run`: no token verified, the body's userId trusted."""
    server, url = start_server(tmp_path_factory.mktemp("stack-dev") / "stack.log", "--auth", "dev", "--no-workers")
    yield url
    stop_server(server)
