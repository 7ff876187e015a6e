"""The SQLAlchemy engine, built once per container."""

from __future__ import annotations

from pymysql.constants import CLIENT
from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import URL

from couponcore.config import Settings


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
    return create_engine(
        database_url(settings),
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_lock_wait_timeout_s,
        # A frozen Lambda container wakes with connections the server may have dropped.
        pool_pre_ping=True,
        pool_recycle=3600,
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
