"""Configuration, read once per container from environment variables into a typed object."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


def _int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def _float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _bool(name: str, default: bool) -> bool:
    return os.environ.get(name, str(default)).strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True, slots=True)
class Settings:
    db_host: str
    db_port: int
    db_user: str
    db_password: str
    db_secret_arn: str | None  # Secrets Manager secret with username and password, read instead of the two above
    db_ssl: bool  # TLS to MySQL (RDS Proxy requires it)
    db_init_session: bool  # set the lock wait per session (off behind RDS Proxy, whose InitQuery does it)
    db_name: str
    db_pool_size: int
    db_max_overflow: int
    db_connect_timeout_s: int
    # Seconds a V1 request waits for the hot coupon row before answering 503.
    db_lock_wait_timeout_s: int
    redis_host: str
    redis_port: int
    redis_db: int
    redis_ssl: bool
    redis_timeout_s: float
    redis_max_connections: int
    issue_queue_url: str | None
    sqs_timeout_s: float
    # V1-async lock: how long a request waits for it, and how long a holder keeps it at most.
    lock_wait_s: float
    lock_lease_s: float
    # How old a pending reservation must be before reconciliation sends it again.
    reconcile_grace_s: float
    idempotency_ttl_s: int
    service_name: str
    # Refuse issue and status requests that carry no verified identity (the template turns it on).
    require_identity: bool
    # The JWT claim that names the user (Cognito: a custom attribute, since its sub is a UUID).
    user_id_claim: str

    @classmethod
    def from_env(cls) -> Settings:
        return cls(
            db_host=os.environ.get("DB_HOST", "127.0.0.1"),
            db_port=_int("DB_PORT", 3306),
            db_user=os.environ.get("DB_USER", "root"),
            db_password=os.environ.get("DB_PASSWORD", ""),
            db_secret_arn=os.environ.get("DB_SECRET_ARN") or None,
            db_ssl=_bool("DB_SSL", False),
            db_init_session=_bool("DB_INIT_SESSION", True),
            db_name=os.environ.get("DB_NAME", "coupon"),
            db_pool_size=_int("DB_POOL_SIZE", 2),
            db_max_overflow=_int("DB_MAX_OVERFLOW", 2),
            db_connect_timeout_s=_int("DB_CONNECT_TIMEOUT_S", 3),
            db_lock_wait_timeout_s=_int("DB_LOCK_WAIT_TIMEOUT_S", 3),
            redis_host=os.environ.get("REDIS_HOST", "127.0.0.1"),
            redis_port=_int("REDIS_PORT", 6379),
            redis_db=_int("REDIS_DB", 0),  # cluster mode has only 0; tests use another
            redis_ssl=_bool("REDIS_SSL", False),
            redis_timeout_s=_float("REDIS_TIMEOUT_S", 1.0),
            redis_max_connections=_int("REDIS_MAX_CONNECTIONS", 64),
            issue_queue_url=os.environ.get("ISSUE_QUEUE_URL") or None,
            # Connect and read, each; two attempts. In the VPC a send takes milliseconds.
            sqs_timeout_s=_float("SQS_TIMEOUT_S", 1.0),
            lock_wait_s=_float("LOCK_WAIT_S", 3.0),
            # Default: longer than the three Redis calls of the critical section can take at their timeout.
            lock_lease_s=_float("LOCK_LEASE_S", 3 * _float("REDIS_TIMEOUT_S", 1.0) + 1.0),
            reconcile_grace_s=_float("RECONCILE_GRACE_S", 60.0),
            idempotency_ttl_s=_int("IDEMPOTENCY_TTL_S", 3600),
            service_name=os.environ.get("POWERTOOLS_SERVICE_NAME", "coupon"),
            require_identity=_bool("REQUIRE_IDENTITY", False),
            user_id_claim=os.environ.get("USER_ID_CLAIM", "sub"),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
