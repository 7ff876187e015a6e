"""Configuration: read from the environment once per container, validated, and handed to whatever needs
it. Nothing else in the package reads the environment (Powertools reads its own POWERTOOLS_* variables)."""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache

TRUE = frozenset({"1", "true", "yes", "on"})
FALSE = frozenset({"0", "false", "no", "off", ""})


# A person double-clicks, or retries after a 503's Retry-After of 1 s: 5 a second leaves room for both.
DEFAULT_FAIR_SHARE_PER_S = 5


class ConfigError(ValueError):
    """A setting is missing its form or its bounds; the message names the variable."""


class _Reader:
    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def text(self, name: str, default: str) -> str:
        return self._env.get(name, default)

    def optional(self, name: str) -> str | None:
        return self._env.get(name) or None

    def int(self, name: str, default: int, *, minimum: int = 0) -> int:
        raw = self._env.get(name)
        try:
            value = default if raw is None else int(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a whole number") from None
        if value < minimum:
            raise ConfigError(f"{name}={value} must be at least {minimum}")
        return value

    def float(self, name: str, default: float, *, positive: bool = True) -> float:
        raw = self._env.get(name)
        try:
            value = default if raw is None else float(raw)
        except ValueError:
            raise ConfigError(f"{name}={raw!r} is not a number") from None
        if positive and not value > 0:
            raise ConfigError(f"{name}={value} must be greater than 0")
        return value

    def optional_float(self, name: str) -> builtins.float | None:
        return None if self._env.get(name) is None else self.float(name, 0.0)

    def bool(self, name: str, default: bool) -> bool:
        raw = self._env.get(name)
        if raw is None:
            return default
        word = raw.strip().lower()
        if word not in TRUE | FALSE:
            raise ConfigError(f"{name}={raw!r} is not one of true/false, 1/0, yes/no, on/off")
        return word in TRUE


@dataclass(frozen=True, slots=True)
class Settings:
    db_host: str
    db_port: int
    db_user: str
    db_password: str
    db_secret_arn: str | None  # Secrets Manager secret with username and password, read instead of the two above
    # The migrations only: the secret of the service's own user, which they create.
    db_runtime_secret_arn: str | None
    db_ssl: bool  # TLS to MySQL, always verified (RDS Proxy requires it)
    # Certificate authorities trusted for MySQL besides the system's: the RDS bundle `make deploy` ships,
    # or a test's own CA.
    db_ssl_ca: str | None
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
    redis_ssl_ca: str | None  # authorities trusted besides the system's (a cache with a private CA)
    # The cluster protocol (ElastiCache Serverless and cluster-mode groups speak only it).
    redis_cluster: bool
    redis_username: str | None
    redis_password: str | None
    redis_secret_arn: str | None  # Secrets Manager secret with username and password, read instead
    redis_timeout_s: float
    # Replicas that must acknowledge a reservation before its 202 (WAIT), and how long to wait for them.
    redis_replica_acks: int
    redis_replica_ack_timeout_ms: int
    redis_max_connections: int
    issue_queue_url: str | None
    # Where batch_persist puts a reservation it cannot trust (its signature does not verify).
    dead_letter_queue_url: str | None
    # The HMAC key that signs reservations on the queue ("key" of a JSON secret).
    signing_secret_arn: str | None
    # With the front door (CloudFront): the secret whose "value" every request must carry in x-origin-verify.
    origin_verify_secret_arn: str | None
    sqs_timeout_s: float
    # Connect and read timeouts of the other AWS API calls (Secrets Manager at cold start).
    secrets_timeout_s: float
    # V1-async lock: how long a request waits for it, and how long a holder keeps it at most.
    lock_wait_s: float
    lock_lease_s: float | None  # None: derived from the critical section it guards (services/async_issue.py)
    # How old a pending reservation must be before reconciliation sends it again.
    reconcile_grace_s: float
    queue_longest_stay_s: float  # the longest a reservation stays in the issue queue (services/recount.py)
    idempotency_ttl_s: int
    # Issue requests one user may send for one coupon per second (0: no limit); past it, 429.
    issue_fair_share_per_s: int
    # Refuse issue and status requests that carry no verified identity (the template turns it on).
    require_identity: bool
    # The JWT claim that names the user (Cognito: a custom attribute, since its sub is a UUID).
    user_id_claim: str
    # The token_use a token must carry when it has that claim (Cognito's access and id tokens).
    token_use: str
    metrics_enabled: bool
    metrics_namespace: str
    tracing_enabled: bool

    @property
    def statement_timeout_s(self) -> int:
        """The longest a MySQL statement may wait is the row lock's wait, on the server: a little more than
        that means the server is gone."""
        return self.db_lock_wait_timeout_s + 1

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        read = _Reader(env)
        redis_timeout_s = read.float("REDIS_TIMEOUT_S", 1.0)
        settings = cls(
            db_host=read.text("DB_HOST", "127.0.0.1"),
            db_port=read.int("DB_PORT", 3306, minimum=1),
            db_user=read.text("DB_USER", "root"),
            db_password=read.text("DB_PASSWORD", ""),
            db_secret_arn=read.optional("DB_SECRET_ARN"),
            db_runtime_secret_arn=read.optional("DB_RUNTIME_SECRET_ARN"),
            db_ssl=read.bool("DB_SSL", False),
            db_ssl_ca=read.optional("DB_SSL_CA"),
            db_init_session=read.bool("DB_INIT_SESSION", True),
            db_name=read.text("DB_NAME", "coupon"),
            db_pool_size=read.int("DB_POOL_SIZE", 2, minimum=1),
            db_max_overflow=read.int("DB_MAX_OVERFLOW", 2),
            # In the VPC a connect takes milliseconds; the cold path's waits must add up inside the Timeout.
            db_connect_timeout_s=read.int("DB_CONNECT_TIMEOUT_S", 2, minimum=1),
            db_lock_wait_timeout_s=read.int("DB_LOCK_WAIT_TIMEOUT_S", 3, minimum=1),
            redis_host=read.text("REDIS_HOST", "127.0.0.1"),
            redis_port=read.int("REDIS_PORT", 6379, minimum=1),
            redis_db=read.int("REDIS_DB", 0),  # cluster mode has only 0; tests use another
            redis_ssl=read.bool("REDIS_SSL", False),
            redis_ssl_ca=read.optional("REDIS_SSL_CA"),
            redis_cluster=read.bool("REDIS_CLUSTER", False),
            redis_username=read.optional("REDIS_USERNAME"),
            redis_password=read.optional("REDIS_PASSWORD"),
            redis_secret_arn=read.optional("REDIS_SECRET_ARN"),
            redis_timeout_s=redis_timeout_s,
            redis_replica_acks=read.int("REDIS_REPLICA_ACKS", 0),
            redis_replica_ack_timeout_ms=read.int("REDIS_REPLICA_ACK_TIMEOUT_MS", 100, minimum=1),
            redis_max_connections=read.int("REDIS_MAX_CONNECTIONS", 64, minimum=1),
            issue_queue_url=read.optional("ISSUE_QUEUE_URL"),
            dead_letter_queue_url=read.optional("DEAD_LETTER_QUEUE_URL"),
            signing_secret_arn=read.optional("SIGNING_SECRET_ARN"),
            origin_verify_secret_arn=read.optional("ORIGIN_VERIFY_SECRET_ARN"),
            # Connect and read, each; two attempts. In the VPC a send takes milliseconds.
            sqs_timeout_s=read.float("SQS_TIMEOUT_S", 1.0),
            # A secret is read once per container and then every few minutes: 2 s at worst (two attempts).
            secrets_timeout_s=read.float("SECRETS_TIMEOUT_S", 0.5),
            lock_wait_s=read.float("LOCK_WAIT_S", 3.0),
            lock_lease_s=read.optional_float("LOCK_LEASE_S"),
            reconcile_grace_s=read.float("RECONCILE_GRACE_S", 60.0),
            queue_longest_stay_s=read.float("QUEUE_LONGEST_STAY_S", 900.0),
            idempotency_ttl_s=read.int("IDEMPOTENCY_TTL_S", 3600, minimum=1),
            issue_fair_share_per_s=read.int("ISSUE_FAIR_SHARE_PER_S", DEFAULT_FAIR_SHARE_PER_S),
            require_identity=read.bool("REQUIRE_IDENTITY", False),
            user_id_claim=read.text("USER_ID_CLAIM", "sub"),
            token_use=read.text("TOKEN_USE", "access"),
            metrics_enabled=not read.bool("POWERTOOLS_METRICS_DISABLED", False),
            metrics_namespace=read.text("POWERTOOLS_METRICS_NAMESPACE", "CouponService"),
            tracing_enabled=not read.bool("POWERTOOLS_TRACE_DISABLED", False),
        )
        if settings.redis_cluster and settings.redis_db:
            raise ConfigError(f"REDIS_DB={settings.redis_db}: a Redis cluster has only database 0")
        for name, ca, tls in (
            ("DB", settings.db_ssl_ca, settings.db_ssl),
            ("REDIS", settings.redis_ssl_ca, settings.redis_ssl),
        ):
            if ca and not tls:
                raise ConfigError(f"{name}_SSL_CA is set but {name}_SSL is off: the certificate would never be checked")
        for name, ca in (("DB_SSL_CA", settings.db_ssl_ca), ("REDIS_SSL_CA", settings.redis_ssl_ca)):
            if ca and not os.path.isfile(ca):
                raise ConfigError(f"{name}={ca} is not a file: the layer ships its certificate bundle there")
        if settings.token_use not in ("access", "id"):
            raise ConfigError(f"TOKEN_USE={settings.token_use!r} is not access or id")
        return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
