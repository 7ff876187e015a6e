"""A per-coupon distributed lock on Redis: owner token, lease, release only by the owner."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

# Deletes the key only while it still holds this owner's token, atomically.
RELEASE_IF_OWNER = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


class LockTimeoutError(Exception):
    """The lock was not had within the wait time."""


@dataclass(frozen=True, slots=True)
class LockTiming:
    wait_s: float
    lease_s: float

    def check_covers(self, critical_section_bound_s: float) -> None:
        # A lease shorter than the worst-case critical section could expire while the owner still works.
        if self.lease_s <= critical_section_bound_s:
            raise ValueError(
                f"lock lease {self.lease_s:.3f}s must exceed the critical section's bound "
                f"{critical_section_bound_s:.3f}s"
            )


@dataclass(frozen=True, slots=True)
class LockResult:
    waited_s: float


class RedisLock:
    def __init__(self, client: redis.Redis, timing: LockTiming) -> None:
        self._redis = client
        self._timing = timing
        self._release = client.register_script(RELEASE_IF_OWNER)

    @contextmanager
    def hold(self, key: str, wait_s: float | None = None) -> Iterator[LockResult]:
        """Hold ``key`` for the block; raises LockTimeoutError when the wait time (the configured one, or
        less when the caller has less) runs out."""
        token = uuid.uuid4().hex
        started = time.monotonic()
        deadline = started + min(self._timing.wait_s, self._timing.wait_s if wait_s is None else wait_s)
        lease_ms = int(self._timing.lease_s * 1000)
        backoff = 0.002
        while not self._redis.set(key, token, nx=True, px=lease_ms):
            if time.monotonic() >= deadline:
                raise LockTimeoutError(key)
            time.sleep(random.uniform(backoff / 2, backoff))  # jitter: waiters do not retry in lockstep
            backoff = min(backoff * 2, 0.05)
        try:
            yield LockResult(waited_s=time.monotonic() - started)
        finally:
            self._release(keys=[key], args=[token])

    def release_if_owner(self, key: str, token: str) -> bool:
        return bool(self._release(keys=[key], args=[token]))
