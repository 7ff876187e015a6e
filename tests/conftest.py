"""Test-wide set-up: a dedicated database and Redis db, migrated once per session."""

from __future__ import annotations

import os

# Before anything imports couponcore: tests never touch the development database.
os.environ.setdefault("DB_NAME", "coupon_test")
os.environ.setdefault("REDIS_DB", "15")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
# The concurrency tests run up to 200 handler invocations at once in this process.
os.environ.setdefault("DB_POOL_SIZE", "50")
os.environ.setdefault("DB_MAX_OVERFLOW", "200")
os.environ.setdefault("DB_LOCK_WAIT_TIMEOUT_S", "10")
os.environ.setdefault("REDIS_MAX_CONNECTIONS", "256")

from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text

from couponcore import bootstrap
from couponcore.adapters.mysql import database_url
from couponcore.config import Settings
from localdev.migrate import migrate


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings.from_env()


@pytest.fixture(scope="session")
def migrated_database(settings: Settings) -> Settings:
    """Drop and re-create the test database from the migrations: the schema under test is the migrated one."""
    server = create_engine(database_url(settings, database=""))
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS `{settings.db_name}`"))
    server.dispose()
    migrate(settings)
    return settings


@pytest.fixture
def clean_state(migrated_database: Settings) -> Iterator[None]:
    """Empty tables and Redis db, fresh clients: each test starts as a new container would."""
    bootstrap.reset()
    container = bootstrap.container()
    with container.engine.begin() as connection:
        connection.execute(text("SET FOREIGN_KEY_CHECKS = 0"))
        for table in ("coupon_issues", "coupons"):
            connection.execute(text(f"TRUNCATE TABLE {table}"))
        connection.execute(text("SET FOREIGN_KEY_CHECKS = 1"))
    container.redis.flushdb()
    yield
    bootstrap.reset()
