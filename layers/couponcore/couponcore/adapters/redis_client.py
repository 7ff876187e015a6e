"""The Redis client, built once per container: standalone, or the cluster protocol that ElastiCache
Serverless and cluster-mode groups speak (every key of a coupon shares a hash tag, so each script and
each pipeline of one coupon runs on one shard)."""

from __future__ import annotations

from typing import Any, TypeAlias

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import RedisCluster
from redis.credentials import CredentialProvider
from redis.retry import Retry

from couponcore.adapters.aws import read_credentials
from couponcore.config import Settings

RedisClient: TypeAlias = "redis.Redis | RedisCluster"

# The cluster client's retries on a dropped connection or a moved slot: one, quick, so a dead shard fails
# the request inside its time budget.
RETRIES = 1


class SecretCredentials(CredentialProvider):
    """The ACL user and password from Secrets Manager, read when a connection is opened (cached for
    minutes), so a rotated password reaches new connections without a new container."""

    def __init__(self, arn: str, timeout_s: float) -> None:
        self._arn = arn
        self._timeout_s = timeout_s

    def get_credentials(self) -> tuple[str, str]:
        return read_credentials(self._arn, self._timeout_s)


def _account(settings: Settings) -> dict[str, Any]:
    """REDIS_SECRET_ARN's user, else REDIS_USERNAME/REDIS_PASSWORD from the environment (local tools)."""
    if settings.redis_secret_arn:
        return {"credential_provider": SecretCredentials(settings.redis_secret_arn, settings.secrets_timeout_s)}
    return {"username": settings.redis_username, "password": settings.redis_password}


def create_redis(settings: Settings) -> RedisClient:
    # Both clients: the same server, account, timeouts and pool size. TLS is verified against the system's
    # authorities, plus REDIS_SSL_CA's.
    common: dict[str, Any] = {
        "host": settings.redis_host,
        "port": settings.redis_port,
        **_account(settings),
        "socket_timeout": settings.redis_timeout_s,
        "socket_connect_timeout": settings.redis_timeout_s,
        "max_connections": settings.redis_max_connections,
        "decode_responses": True,
    }
    tls: dict[str, Any] = {"ssl_ca_certs": settings.redis_ssl_ca} if settings.redis_ssl else {}
    if settings.redis_cluster:
        retry = Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), RETRIES)
        return RedisCluster(**common, **tls, ssl=settings.redis_ssl, retry=retry)
    pool = redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
        **common,
        **tls,
        db=settings.redis_db,
        timeout=settings.redis_timeout_s,
        connection_class=redis.SSLConnection if settings.redis_ssl else redis.Connection,
    )
    return redis.Redis(connection_pool=pool)
