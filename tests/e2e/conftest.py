"""The local API server, started as a user would start it, on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from couponcore.config import Settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def api_url(migrated_database: Settings, sqs_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log_path = tmp_path_factory.mktemp("server") / "api.log"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DB_POOL_SIZE": "8",
        "DB_MAX_OVERFLOW": "8",
        "ISSUE_QUEUE_NAME": f"coupon-e2e-{uuid.uuid4().hex[:12]}",
    }
    env.pop("ISSUE_QUEUE_URL", None)
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "localdev.api_server", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"local API server did not start:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)
