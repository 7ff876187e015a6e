"""Which library exceptions mean "a dependency is unavailable", and their translation into the domain's
``DependencyUnavailableError`` at the edge of each adapter."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import botocore.exceptions
import pymysql.err
import redis.exceptions
import sqlalchemy.exc

from couponcore.domain.errors import DependencyUnavailableError

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

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def translated(dependency: str, errors: tuple[type[Exception], ...]) -> Iterator[None]:
    try:
        yield
    except errors as error:
        raise DependencyUnavailableError(dependency, error) from error


def translating(dependency: str, errors: tuple[type[Exception], ...]) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A method whose library errors leave as DependencyUnavailableError."""

    def decorate(method: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(method)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with translated(dependency, errors):
                return method(*args, **kwargs)

        return wrapper

    return decorate


on_redis = translating("redis", REDIS_UNAVAILABLE)
on_sqs = translating("sqs", SQS_UNAVAILABLE)
