"""The SQLAlchemy engine, built once per container."""

from __future__ import annotations

import time
from typing import Any

from pymysql.constants import CLIENT
from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL

from couponcore.config import Settings

# A connection idle longer than this is pinged before use: a frozen Lambda container wakes with connections
# the server may have dropped. A busy one is not, so the hot path pays no extra round trip.
PING_AFTER_IDLE_S = 10.0


def database_url(settings: Settings, database: str | None = None) -> URL:
    return URL.create(
        "mysql+pymysql",
        username=settings.db_user,
        password=settings.db_password,
        host=settings.db_host,
        port=settings.db_port,
        database=database if database is not None else settings.db_name,
    )


def create_mysql_engine(settings: Settings) -> Engine:
    engine = create_engine(
        database_url(settings),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_lock_wait_timeout_s,
        pool_recycle=3600,
        # The unit of work always ends its transaction (see SqlUnitOfWork.__exit__), so the pool's own
        # ROLLBACK on every check-in would be a wasted round trip.
        pool_reset_on_return=None,
        connect_args={
            "connect_timeout": settings.db_connect_timeout_s,
            "read_timeout": settings.db_lock_wait_timeout_s + 10,
            "write_timeout": 10,
            "charset": "utf8mb4",
            # The V1 issue sends its whole transaction as one multi-statement round trip.
            "client_flag": CLIENT.MULTI_STATEMENTS,
            "init_command": (
                "SET SESSION time_zone = '+00:00', "
                f"SESSION innodb_lock_wait_timeout = {int(settings.db_lock_wait_timeout_s)}"
            ),
        },
    )
    _ping_idle_connections(engine)
    return engine


def _ping_idle_connections(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def remember_idle_since(dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is not None and time.monotonic() - idle_since > PING_AFTER_IDLE_S:
            try:
                dbapi_connection.ping(reconnect=False)
            except Exception as error:
                # The pool discards this connection and checks out a fresh one.
                raise exc.DisconnectionError("stale connection") from error
