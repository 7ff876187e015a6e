"""The CouponCatalog port: the two-level coupon cache of the async hot path, per-container memory (10 s),
Redis (30 min), then MySQL.

What is cached is the coupon as the issue rules read it plus a "sold out" flag (the seed's "sold out or
ended" flag, with "ended" read from the coupon's own window, so that a sold-out coupon is refused as sold
out even once it has ended). How stale each level can be, and why that is safe:
- The flag only short-circuits a refusal. A stale "available" flag costs one Lua call, which decides
  against the live Redis seat count. The flag turns on when the script answers sold out; a seat given
  back afterwards (a failed send, a rejection) drops the Redis entry in the same script, so a stale
  flag lasts at most one local TTL in other containers.
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
from dataclasses import asdict
from datetime import datetime
from typing import Any, Generic, TypeVar

from couponcore import metrics
from couponcore.adapters import redis_keys
from couponcore.adapters.faults import on_redis
from couponcore.adapters.redis_client import RedisClient
from couponcore.domain.coupon import Coupon
from couponcore.observability import logger
from couponcore.services.ports import CachedCoupon, MetricsSink

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
# The highest coupon id, kept in Redis this long (then read again from MySQL): a coupon created while Redis
# refused the update is invisible to the async paths at most this long.
HIGHEST_ID_REDIS_TTL_S = 30
# Raises the stored highest id, never lowers it (refresh runs for old coupons too).
RAISE_HIGHEST_ID = """
local stored = redis.call('GET', KEYS[1])
if not stored or tonumber(stored) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
"""
Value = TypeVar("Value")


def to_json(cached: CachedCoupon) -> str:
    fields = asdict(cached.coupon)  # the enums are StrEnums: they serialize as their values
    return json.dumps({**fields, "sold_out": cached.sold_out}, default=_isoformat, separators=(",", ":"))


def from_json(raw: str) -> CachedCoupon:
    fields: dict[str, Any] = json.loads(raw)
    return CachedCoupon(Coupon.from_fields(fields), bool(fields["sold_out"]))


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


class TwoLevelCouponCatalog:
    def __init__(
        self,
        client: RedisClient,
        load_coupon: Callable[[int], Coupon | None],
        seats_taken: Callable[[Coupon], int],
        metrics_sink: MetricsSink,
        *,
        local: LocalCache[CachedCoupon] | None = None,
        highest_id: Callable[[], int] | None = None,
    ) -> None:
        self._redis = client
        self._metrics = metrics_sink
        self._load_coupon = load_coupon
        # None: every unknown id is looked up (once per id and MISSING TTL).
        self._load_highest_id = highest_id
        self._highest_id: LocalCache[int] = LocalCache()
        self._raise_highest_id = client.register_script(RAISE_HIGHEST_ID)
        self._seats_taken = seats_taken
        self.local: LocalCache[CachedCoupon] = local or LocalCache()
        self.missing: LocalCache[bool] = LocalCache(ttl_s=MISSING_LOCAL_TTL_S)
        self._loader_locks = [threading.Lock() for _ in range(LOADER_LOCKS)]

    @on_redis
    def get(self, coupon_id: int) -> CachedCoupon | None:
        self._metrics.count(metrics.CACHE_LOOKUPS)
        cached = self.local.get(coupon_id)
        if cached is not None or self.missing.get(coupon_id):
            self._metrics.count(metrics.CACHE_LOCAL_HITS)
            return cached
        with self._loader_locks[coupon_id % LOADER_LOCKS]:  # one thread of this container per coupon goes on
            cached = self.local.get(coupon_id)  # filled while this thread waited
            if cached is not None or self.missing.get(coupon_id):
                return cached
            if self._beyond_highest_id(coupon_id):  # before the entry's read: a made-up id costs one GET
                self.missing.put(coupon_id, True)
                return None
            cached = self._from_redis(coupon_id)
            if cached is not None or self.missing.get(coupon_id):
                return cached
            return self._load_once(coupon_id)

    @on_redis
    def refresh(self, coupon_id: int) -> CachedCoupon | None:
        """Reload from MySQL into both levels (after a commit that changed what the rules see)."""
        coupon = self._load_coupon(coupon_id)
        if coupon is None:
            self._redis.set(redis_keys.coupon_view(coupon_id), MISSING_ENTRY, ex=MISSING_REDIS_TTL_S)
            self.missing.put(coupon_id, True)
            return None
        cached = CachedCoupon(coupon, sold_out=not coupon.has_quantity_left(self._seats_taken(coupon)))
        self._redis.set(redis_keys.coupon_view(coupon_id), to_json(cached), ex=REDIS_TTL_S)
        self.local.put(coupon_id, cached)
        self._raise_highest_id_to(coupon_id)
        return cached

    def _raise_highest_id_to(self, coupon_id: int) -> None:
        """After a coupon is found in MySQL. A refresh after each persisted batch of an old coupon costs no
        Redis call: this container's copy already covers its id."""
        known = self._highest_id.get(0)
        if known is not None and coupon_id <= known:
            return
        self._raise_highest_id(keys=[redis_keys.highest_coupon_id()], args=[coupon_id, HIGHEST_ID_REDIS_TTL_S])
        self._highest_id.put(0, coupon_id)

    def _beyond_highest_id(self, coupon_id: int) -> bool:
        """Whether no coupon can have this id: a burst of made-up ids never reaches MySQL. An id above this
        container's copy is checked against Redis's (a coupon created a moment ago is above the copy)."""
        if self._load_highest_id is None:
            return False
        known = self._highest_id.get(0)
        if known is not None and coupon_id <= known:
            return False
        stored: Any = self._redis.get(redis_keys.highest_coupon_id())
        if stored is None:  # expired or lost: MySQL once, then Redis again for everyone
            self._highest_id.clear()
            self._raise_highest_id_to(self._load_highest_id())
        else:
            self._highest_id.put(0, int(stored))
        return coupon_id > (self._highest_id.get(0) or 0)

    @on_redis
    def mark_sold_out(self, coupon_id: int) -> None:
        """Redis said sold out: refuse the next requests from the cache, without a MySQL read."""
        cached = self.local.get(coupon_id) or self._from_redis(coupon_id, count=False)
        if cached is None or cached.sold_out:
            return
        sold_out = CachedCoupon(cached.coupon, sold_out=True)
        self._redis.set(redis_keys.coupon_view(coupon_id), to_json(sold_out), ex=REDIS_TTL_S)
        self.local.put(coupon_id, sold_out)

    def _from_redis(self, coupon_id: int, *, count: bool = True) -> CachedCoupon | None:
        raw = self._redis.get(redis_keys.coupon_view(coupon_id))
        cached = None
        if raw == MISSING_ENTRY:
            self.missing.put(coupon_id, True)
            if count:
                self._metrics.count(metrics.CACHE_REDIS_HITS)
            return None
        if raw is not None:
            try:
                cached = from_json(str(raw))
            except (ValueError, KeyError, TypeError):
                # Written by another version of the code: a miss, and the reload overwrites it.
                logger.warning("unreadable coupon cache entry", extra={"coupon_id": coupon_id})
        if count and cached is not None:
            self._metrics.count(metrics.CACHE_REDIS_HITS)
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
