"""The CouponLock and PassLock ports on Redis: locks with an owner token and a lease, released only by
their owner."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from couponcore.adapters import redis_keys
from couponcore.adapters.driver_errors import REDIS_UNAVAILABLE, translated
from couponcore.adapters.redis_client import RedisClient
from couponcore.observability import logger
from couponcore.services.ports import LockNotAcquiredError

# Deletes the key only while it still holds this owner's token, atomically.
RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


@dataclass(frozen=True, slots=True)
class LockTiming:
    wait_s: float
    lease_s: float


class RedisLock:
    def __init__(self, client: RedisClient, timing: LockTiming) -> None:
        self._redis = client
        self._timing = timing
        self._release = client.register_script(RELEASE_IF_OWNER)

    @contextmanager
    def hold(self, coupon_id: int, wait_s: float) -> Iterator[float]:
        """Hold the coupon's lock for the block, yielding the seconds waited; raises LockNotAcquiredError when
        the wait time (the configured one, or less when the caller has less) runs out."""
        key = redis_keys.issue_lock(coupon_id)
        token = uuid.uuid4().hex
        started = time.monotonic()
        deadline = started + min(self._timing.wait_s, wait_s)
        lease_ms = int(self._timing.lease_s * 1000)
        backoff = 0.002
        with translated("redis", REDIS_UNAVAILABLE):
            while not self._redis.set(key, token, nx=True, px=lease_ms):
                if time.monotonic() >= deadline:
                    raise LockNotAcquiredError(key)
                time.sleep(random.uniform(backoff / 2, backoff))  # jitter: waiters do not retry in lockstep
                backoff = min(backoff * 2, 0.05)
        try:
            yield time.monotonic() - started
        finally:
            try:
                self._release(keys=[key], args=[token])
            except REDIS_UNAVAILABLE as error:
                # The block's outcome stands (a seat may be held already); the lease frees the lock.
                logger.warning("lock not released; its lease will expire", extra={"key": key, "error": repr(error)})


class RedisPassLock:
    """One holder at a time of a named job, for at most ``lease_s`` (a crashed holder frees it then)."""

    def __init__(self, client: RedisClient, key: str, lease_s: float) -> None:
        self._redis = client
        self._key = key
        self._lease_ms = int(lease_s * 1000)
        self._release = client.register_script(RELEASE_IF_OWNER)

    @contextmanager
    def exclusive(self) -> Iterator[bool]:
        token = uuid.uuid4().hex
        with translated("redis", REDIS_UNAVAILABLE):
            had = bool(self._redis.set(self._key, token, nx=True, px=self._lease_ms))
        try:
            yield had
        finally:
            if had:
                with translated("redis", REDIS_UNAVAILABLE):
                    self._release(keys=[self._key], args=[token])
