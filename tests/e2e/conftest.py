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


def start_server(log_path: Path, *extra: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
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
            [sys.executable, "-m", "localdev.api_server", "--port", str(port), *extra],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return server, url
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.terminate()
            pytest.fail(f"local API server did not start:\n{log_path.read_text()}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def api_url(migrated_database: Settings, sqs_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server as `make run` starts it: development identity mode."""
    server, url = start_server(tmp_path_factory.mktemp("server") / "api.log")
    yield url
    server.terminate()
    server.wait(timeout=10)


@pytest.fixture(scope="session")
def api_url_jwt(
    migrated_database: Settings, sqs_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The server verifying JWTs as API Gateway's authorizers would."""
    server, url = start_server(tmp_path_factory.mktemp("server-jwt") / "api.log", "--auth", "jwt", "--no-workers")
    yield url
    server.terminate()
    server.wait(timeout=10)
