"""The AWS API clients' settings in one place: short, explicit timeouts for every call a function makes.

botocore's defaults (60 s to connect, 60 s to read, retries with backoff) outlast the functions' 10 s
Timeout: in a VPC with no route to an endpoint, a call would hang the invocation instead of failing it.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from botocore.config import Config

# Two attempts: one retry covers a dropped connection; more would not fit the function's time.
ATTEMPTS = 2


def client_config(timeout_s: float, *, max_pool_connections: int = 10) -> Config:
    """Connect and read each wait at most ``timeout_s``; the worst call is ATTEMPTS * 2 * timeout_s."""
    return Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"mode": "standard", "max_attempts": ATTEMPTS},
        max_pool_connections=max_pool_connections,
    )


def worst_call_s(timeout_s: float) -> float:
    return ATTEMPTS * 2 * timeout_s


@lru_cache(maxsize=4)
def _secrets(timeout_s: float) -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider  # only readers of a secret import it

    return SecretsProvider(boto_config=client_config(timeout_s))


# Cached by Powertools this long: a rotated secret is picked up within it, or at once after a refusal.
SECRET_MAX_AGE_S = 300


def read_credentials(arn: str, timeout_s: float, *, fresh: bool = False) -> tuple[str, str]:
    """The "username" and "password" of a JSON secret in Secrets Manager (``fresh`` skips the cache)."""
    secret: Any = _secrets(timeout_s).get(arn, transform="json", max_age=SECRET_MAX_AGE_S, force_fetch=fresh)
    return str(secret["username"]), str(secret["password"])
