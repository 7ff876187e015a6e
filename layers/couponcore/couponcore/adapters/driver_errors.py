"""Which library exceptions mean "a dependency is unavailable", and their translation into the domain's
``DependencyUnavailableError`` at the edge of each adapter. MySQL's are with the repositories
(adapters/repositories.py): importing SQLAlchemy here would load it in functions that never reach MySQL."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

import botocore.exceptions
import redis.exceptions

from couponcore.domain.errors import DependencyUnavailableError

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
