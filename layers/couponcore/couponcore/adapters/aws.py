"""The AWS API clients' settings in one place, and the one reader of secrets.

botocore's defaults (60 s to connect, 60 s to read, retries with backoff) outlast the functions' Timeout:
in a VPC with no route to an endpoint, a call would hang the invocation instead of failing it.
"""

from __future__ import annotations

import time
from functools import lru_cache
from typing import Any

from botocore.config import Config

from couponcore.domain.errors import DependencyUnavailableError
from couponcore.services import time_budget

# Two attempts: one retry covers a dropped connection; more would not fit the function's time.
ATTEMPTS = 2


def client_config(timeout_s: float, *, max_pool_connections: int = 10, attempts: int = ATTEMPTS) -> Config:
    """Connect and read each wait at most ``timeout_s``; the worst call is ATTEMPTS * 2 * timeout_s."""
    return Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"mode": "standard", "max_attempts": attempts},
        max_pool_connections=max_pool_connections,
    )


def worst_call_s(timeout_s: float) -> float:
    return ATTEMPTS * 2 * timeout_s


@lru_cache(maxsize=4)
def _secrets(timeout_s: float) -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider  # only readers of a secret import it

    return SecretsProvider(boto_config=client_config(timeout_s))


# Cached this long: a rotated secret is picked up within it, or at once after a refusal (``forget``).
SECRET_MAX_AGE_S = 300
# A secret is read to open a connection: the fetch starts only with time left for that connection's connect
# and first call too (a MySQL connection has a guard of its own; this covers Redis's, at most 1 s each).
SECRET_FOLLOW_UP_S = 2.0
# secret ARN -> (when this container fetched it, its value): one cache, read without a call on the hot path
# (every reservation is signed with a secret's key).
_fetched: dict[str, tuple[float, dict[str, Any]]] = {}


def read_secret(arn: str, timeout_s: float) -> dict[str, Any]:
    """A JSON secret from Secrets Manager, cached per container. A fetch is started only when the
    invocation has the time for its worst case left; a fetch that fails or could not fit is
    DependencyUnavailableError("secrets"): the client hears 503 with Retry-After, never a 500."""
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError, TransformParameterError

    fetched_at, cached = _fetched.get(arn, (-SECRET_MAX_AGE_S, {}))
    if time.monotonic() - fetched_at < SECRET_MAX_AGE_S:
        return cached
    time_budget.require(worst_call_s(timeout_s) + SECRET_FOLLOW_UP_S, "secrets")
    try:
        value: Any = _secrets(timeout_s).get(arn, transform="json", force_fetch=True)
    except (GetParameterError, TransformParameterError) as error:
        raise DependencyUnavailableError("secrets", error) from error
    if not isinstance(value, dict):
        raise DependencyUnavailableError("secrets", ValueError(f"{arn} is not a JSON object"))
    _fetched[arn] = (time.monotonic(), value)
    return value


def forget_secret(arn: str) -> None:
    """The next read fetches the secret again (its value was refused: rotated under us)."""
    _fetched.pop(arn, None)


def read_credentials(arn: str, timeout_s: float) -> tuple[str, str]:
    """The "username" and "password" of a JSON secret."""
    secret = read_secret(arn, timeout_s)
    try:
        return str(secret["username"]), str(secret["password"])
    except KeyError as error:
        raise DependencyUnavailableError("secrets", error) from error
