"""Dependencies of the test's own, on their own ports and data directories, so a test may break them
(make them read-only, fill them up, kill them) without touching the shared servers."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.support.network import free_port


@contextmanager
def private_redis(directory: Path, *options: str) -> Iterator[int]:
    """A redis-server on a free port with the given options; yields the port."""
    if shutil.which("redis-server") is None:
        raise RuntimeError("redis-server is not installed (scripts/services.sh installs it)")
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    server = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(directory),
            *options,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 10
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline or server.poll() is not None:
                server.kill()
                raise
            time.sleep(0.05)
    try:
        yield port
    finally:
        server.terminate()
        server.wait(timeout=10)
        client.close()
