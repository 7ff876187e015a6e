"""The SQLAlchemy engine, built once per container."""

from __future__ import annotations

import ssl
import time
from typing import Any

import pymysql.err
from pymysql.constants import CLIENT
from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from couponcore.adapters.aws import forget_secret, read_credentials
from couponcore.config import Settings
from couponcore.services import time_budget

# A connection idle longer than this is pinged before use: a frozen Lambda container wakes with connections
# the server may have dropped. A busy one is not, so the hot path pays no extra round trip.
PING_AFTER_IDLE_S = 10.0


# MySQL's "access denied": the password changed under us (a rotated secret).
ER_ACCESS_DENIED = 1045


def credentials(settings: Settings) -> tuple[str, str]:
    """User and password: from Secrets Manager when DB_SECRET_ARN is set (cached for 5 minutes), else the
    environment (local tools)."""
    if not settings.db_secret_arn:
        return settings.db_user, settings.db_password
    return read_credentials(settings.db_secret_arn, settings.secrets_timeout_s)


def database_url(settings: Settings, database: str | None = None, *, with_credentials: bool = True) -> URL:
    user, password = credentials(settings) if with_credentials else (None, None)
    return URL.create(
        "mysql+pymysql",
        username=user,
        password=password,
        host=settings.db_host,
        port=settings.db_port,
        database=database if database is not None else settings.db_name,
    )


def tls_arguments(settings: Settings) -> dict[str, Any]:
    """TLS with verification always on: the system's authorities plus DB_SSL_CA (the RDS bundle that
    `make deploy` ships with the layer; RDS Proxy's certificate is from a public authority already).
    Off means off: PyMySQL would otherwise negotiate TLS on its own and verify nothing."""
    if not settings.db_ssl:
        return {"ssl_disabled": True}
    context = ssl.create_default_context()
    if settings.db_ssl_ca:
        context.load_verify_locations(cafile=settings.db_ssl_ca)
    return {"ssl": context}


def create_admin_engine(settings: Settings, database: str | None = None) -> Engine:
    """A plain engine for migrations and tools: the same credentials and TLS as the functions'."""
    return create_engine(
        database_url(settings, database),
        poolclass=NullPool,
        connect_args={"connect_timeout": settings.db_connect_timeout_s, **tls_arguments(settings)},
    )


def create_mysql_engine(settings: Settings) -> Engine:
    engine = create_engine(
        database_url(settings, with_credentials=False),  # each connection reads them (_connect_in_time)
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_timeout=settings.db_lock_wait_timeout_s,
        pool_recycle=3600,
        # The unit of work always ends its transaction (see SqlUnitOfWork.__exit__), so the pool's own
        # ROLLBACK on every check-in would be a wasted round trip.
        pool_reset_on_return=None,
        connect_args={
            "connect_timeout": settings.db_connect_timeout_s,
            "read_timeout": settings.statement_timeout_s,
            "write_timeout": 10,
            "charset": "utf8mb4",
            **tls_arguments(settings),
            # The V1 issue sends its whole transaction as one multi-statement round trip.
            "client_flag": CLIENT.MULTI_STATEMENTS,
            # Behind RDS Proxy this SET would pin every connection: the proxy's InitQuery sets it instead.
            "init_command": (
                f"SET SESSION innodb_lock_wait_timeout = {int(settings.db_lock_wait_timeout_s)}"
                if settings.db_init_session
                else None
            ),
        },
    )
    _ping_idle_connections(engine)
    _connect_in_time(engine, settings)
    return engine


def _connect_in_time(engine: Engine, settings: Settings) -> None:
    """A new connection is opened only when the invocation has time for it; it logs in with the secret as
    it is now, not as it was when the container started. A refused password makes the
    next connection read the secret again (rotated under us) and this request a 503: one attempt per
    request keeps the worst case inside the function's Timeout."""
    connect_s = settings.db_connect_timeout_s + settings.statement_timeout_s  # a connection is for a statement

    @event.listens_for(engine, "do_connect")
    def connect_with_current_secret(dialect: Any, record: Any, cargs: Any, cparams: dict[str, Any]) -> Any:
        user, password = credentials(settings)
        time_budget.require(connect_s, "mysql")
        try:
            return dialect.connect(*cargs, **{**cparams, "user": user, "password": password})
        except pymysql.err.OperationalError as error:
            if error.args[0] == ER_ACCESS_DENIED and settings.db_secret_arn:
                forget_secret(settings.db_secret_arn)
            raise


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


def ping_mysql(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
