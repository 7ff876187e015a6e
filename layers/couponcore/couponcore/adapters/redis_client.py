"""The Redis client, built once per container."""

from __future__ import annotations

import redis

from couponcore.config import Settings


def create_redis(settings: Settings) -> redis.Redis:
    pool = redis.BlockingConnectionPool(  # type: ignore[no-untyped-call]
        host=settings.redis_host,
        port=settings.redis_port,
        db=settings.redis_db,
        max_connections=settings.redis_max_connections,
        timeout=settings.redis_timeout_s,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        connection_class=redis.SSLConnection if settings.redis_ssl else redis.Connection,
        decode_responses=True,
    )
    return redis.Redis(connection_pool=pool)
