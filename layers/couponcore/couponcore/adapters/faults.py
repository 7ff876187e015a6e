"""Which infrastructure exceptions mean "a dependency is unavailable, nothing was changed"."""

from __future__ import annotations

import botocore.exceptions
import pymysql.err
import redis.exceptions
import sqlalchemy.exc

# Connection refused or lost, timeouts (including the row lock wait, MySQL error 1205) and a full pool;
# the driver's own classes too, for the V1 batch that runs on the raw DBAPI cursor.
MYSQL_UNAVAILABLE: tuple[type[Exception], ...] = (
    pymysql.err.OperationalError,
    pymysql.err.InterfaceError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.DisconnectionError,
)
# Down, slow, or up and refusing writes: a replica after a failover (READONLY) or a full memory (OOM).
REDIS_UNAVAILABLE: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,
)

SQS_UNAVAILABLE: tuple[type[Exception], ...] = (
    botocore.exceptions.BotoCoreError,
    botocore.exceptions.ClientError,
)


def unavailable_dependency(error: BaseException) -> str | None:
    """The name of the dependency an exception says is down, or None when it is not such a fault."""
    if isinstance(error, MYSQL_UNAVAILABLE):
        return "mysql"
    if isinstance(error, REDIS_UNAVAILABLE):
        return "redis"
    if isinstance(error, SQS_UNAVAILABLE):
        return "sqs"
    return None
