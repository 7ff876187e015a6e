"""The Redis client, built once per container: standalone, or the cluster protocol that ElastiCache
Serverless and cluster-mode groups speak (every key of a coupon shares a hash tag, so each script and
each pipeline of one coupon runs on one shard)."""

from __future__ import annotations

from typing import TypeAlias

import redis
from redis.backoff import ExponentialWithJitterBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from couponcore.adapters.aws import read_secret
from couponcore.config import Settings

RedisClient: TypeAlias = "redis.Redis | RedisCluster"

# The cluster client's retries on a dropped connection or a moved slot: one, quick, so a dead shard fails
# the request inside its time budget.
RETRIES = 1


def credentials(settings: Settings) -> tuple[str | None, str | None]:
    """ACL user and password: from Secrets Manager when REDIS_SECRET_ARN is set, else the environment."""
    if not settings.redis_secret_arn:
        return settings.redis_username, settings.redis_password
    secret = read_secret(settings.redis_secret_arn, settings.secrets_timeout_s)
    return str(secret["username"]), str(secret["password"])


def create_redis(settings: Settings) -> RedisClient:
    username, password = credentials(settings)
    if settings.redis_cluster:
        return RedisCluster(
            host=settings.redis_host,
            port=settings.redis_port,
            username=username,
            password=password,
            ssl=settings.redis_ssl,
            ssl_ca_certs=settings.redis_ssl_ca,
            socket_timeout=settings.redis_timeout_s,
            socket_connect_timeout=settings.redis_timeout_s,
            max_connections=settings.redis_max_connections,
            retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), RETRIES),
            decode_responses=True,
        )
    # Verified TLS: the system's authorities, plus REDIS_SSL_CA's.
    tls = {"ssl_ca_certs": settings.redis_ssl_ca} if settings.redis_ssl else {}
    pool = redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
        host=settings.redis_host,
        port=settings.redis_port,
        db=settings.redis_db,
        username=username,
        password=password,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        connection_class=redis.SSLConnection if settings.redis_ssl else redis.Connection,
        decode_responses=True,
        **tls,
    )
    return redis.Redis(connection_pool=pool)
