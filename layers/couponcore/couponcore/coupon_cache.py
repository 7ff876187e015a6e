"""The two-level coupon cache of the async hot path: per-container memory (10 s), Redis (30 min), MySQL.

What is cached is the coupon as the issue rules read it plus the seed's "sold out or ended" flag.
How stale each level can be, and why that is safe:
- The flag only short-circuits a refusal. A stale "available" flag costs one Lua call, which decides
  against the live Redis seat count. The flag turns "complete" when the script answers sold out; a seat
  given back afterwards (a failed send, a rejection) refreshes the entry from the sources, so a stale
  "complete" lasts at most one local TTL in other containers.
- Coupon fields never change after creation (there is no update route), so any level may serve them.
- A refresh after commit rewrites Redis and this container's memory; other containers see it within
  the local TTL (10 s), during which the Lua script and MySQL still refuse any oversell.
- An id that does not exist is remembered as missing for a few seconds at both levels, so a burst of
  requests for unknown ids reaches MySQL once per id, not once per request. A coupon created meanwhile
  overwrites the Redis entry at once; another container may answer COUPON_NOT_EXIST for it a moment longer.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

import redis

from couponcore import metrics
from couponcore.adapters import redis_keys
from couponcore.domain.coupon import Coupon
from couponcore.observability import logger

LOCAL_TTL_S = 10.0
LOCAL_MAX_ENTRIES = 1000
REDIS_TTL_S = 30 * 60
# Under a burst of misses only one loader per coupon reads MySQL; the others wait up to this long for it.
LOADER_LEASE_MS = 2000
LOADER_WAIT_S = 0.5
# How long an unknown id is remembered as missing: in Redis, and in each container's memory.
MISSING_REDIS_TTL_S = 5
MISSING_LOCAL_TTL_S = 2.0
MISSING_ENTRY = "missing"
LOADER_LOCKS = 64  # one container's loaders, striped by coupon id: bounded whatever ids arrive
Value = TypeVar("Value")


@dataclass(frozen=True, slots=True)
class CachedCoupon:
    coupon: Coupon
    issue_complete: bool  # sold out or ended when cached

    def to_json(self) -> str:
        fields = asdict(self.coupon)  # the enums are StrEnums: they serialize as their values
        return json.dumps({**fields, "issue_complete": self.issue_complete}, default=_isoformat, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str) -> CachedCoupon:
        fields: dict[str, Any] = json.loads(raw)
        return cls(Coupon.from_fields(fields), bool(fields["issue_complete"]))


def _isoformat(value: datetime) -> str:
    return value.isoformat()


class LocalCache(Generic[Value]):
    """A bounded, thread-safe TTL map (one per Lambda container)."""

    def __init__(self, ttl_s: float = LOCAL_TTL_S, max_entries: int = LOCAL_MAX_ENTRIES) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._entries: OrderedDict[int, tuple[float, Value]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: int) -> Value | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if found[0] <= time.monotonic():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return found[1]

    def put(self, key: int, value: Value) -> None:
        with self._lock:
            self._entries[key] = (time.monotonic() + self._ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class CouponCatalog:
    def __init__(
        self,
        client: redis.Redis,
        load_coupon: Callable[[int], Coupon | None],
        seats_taken: Callable[[Coupon], int],
        clock: Callable[[], datetime],
        local: LocalCache[CachedCoupon] | None = None,
    ) -> None:
        self._redis = client
        self._load_coupon = load_coupon
        self._seats_taken = seats_taken
        self._clock = clock
        self.local: LocalCache[CachedCoupon] = local or LocalCache()
        self.missing: LocalCache[bool] = LocalCache(ttl_s=MISSING_LOCAL_TTL_S)
        self._loader_locks = [threading.Lock() for _ in range(LOADER_LOCKS)]

    def get(self, coupon_id: int) -> CachedCoupon | None:
        metrics.count(metrics.CACHE_LOOKUPS)
        cached = self.local.get(coupon_id)
        if cached is not None or self.missing.get(coupon_id):
            metrics.count(metrics.CACHE_LOCAL_HITS)
            return cached
        with self._loader_locks[coupon_id % LOADER_LOCKS]:  # one thread of this container per coupon goes on
            cached = self.local.get(coupon_id)  # filled while this thread waited
            if cached is not None or self.missing.get(coupon_id):
                return cached
            cached = self._from_redis(coupon_id)
            if cached is not None or self.missing.get(coupon_id):
                return cached
            return self._load_once(coupon_id)

    def refresh(self, coupon_id: int) -> CachedCoupon | None:
        """Reload from MySQL into both levels (after a commit that changed what the rules see)."""
        coupon = self._load_coupon(coupon_id)
        if coupon is None:
            self._redis.set(redis_keys.coupon_view(coupon_id), MISSING_ENTRY, ex=MISSING_REDIS_TTL_S)
            self.missing.put(coupon_id, True)
            return None
        cached = CachedCoupon(coupon, coupon.is_issue_complete(self._clock(), self._seats_taken(coupon)))
        self._redis.set(redis_keys.coupon_view(coupon_id), cached.to_json(), ex=REDIS_TTL_S)
        self.local.put(coupon_id, cached)
        return cached

    def mark_complete(self, coupon_id: int) -> None:
        """Redis said sold out: refuse the next requests from the cache, without a MySQL read."""
        cached = self.local.get(coupon_id) or self._from_redis(coupon_id, count=False)
        if cached is None or cached.issue_complete:
            return
        complete = CachedCoupon(cached.coupon, issue_complete=True)
        self._redis.set(redis_keys.coupon_view(coupon_id), complete.to_json(), ex=REDIS_TTL_S)
        self.local.put(coupon_id, complete)

    def _from_redis(self, coupon_id: int, *, count: bool = True) -> CachedCoupon | None:
        raw = self._redis.get(redis_keys.coupon_view(coupon_id))
        cached = None
        if raw == MISSING_ENTRY:
            self.missing.put(coupon_id, True)
            if count:
                metrics.count(metrics.CACHE_REDIS_HITS)
            return None
        if raw is not None:
            try:
                cached = CachedCoupon.from_json(str(raw))
            except (ValueError, KeyError, TypeError):
                # Written by another version of the code: a miss, and the reload overwrites it.
                logger.warning("unreadable coupon cache entry", extra={"coupon_id": coupon_id})
        if count and cached is not None:
            metrics.count(metrics.CACHE_REDIS_HITS)
        if cached is not None:
            self.local.put(coupon_id, cached)
        return cached

    def _load_once(self, coupon_id: int) -> CachedCoupon | None:
        """Across containers, one loader per coupon reads MySQL; the others wait briefly for its result."""
        loader_key = redis_keys.coupon_view(coupon_id) + ":loader"
        if self._redis.set(loader_key, "1", nx=True, px=LOADER_LEASE_MS):
            try:
                return self.refresh(coupon_id)
            finally:
                self._redis.delete(loader_key)
        deadline = time.monotonic() + LOADER_WAIT_S
        while time.monotonic() < deadline:
            time.sleep(0.01)
            cached = self._from_redis(coupon_id, count=False)
            if cached is not None or self.missing.get(coupon_id):
                return cached
        return self.refresh(coupon_id)  # the loader is slow or gone: read MySQL ourselves
