"""Unit tests need no server: whatever the suite's environment says about the local servers' TLS, the
settings read here point at no certificate file."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from couponcore import bootstrap


@pytest.fixture(autouse=True)
def no_servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("DB_SSL_CA", "REDIS_SSL_CA"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DB_SSL", "false")
    monkeypatch.setenv("REDIS_SSL", "false")
    bootstrap.reset()
    yield
    bootstrap.reset()
