"""The CouponCatalog port: the two-level coupon cache of the async hot path, per-container memory (10 s),
Redis (30 min), then MySQL.

What is cached is the coupon as the issue rules read it plus a "sold out" flag (the seed's "sold out or
ended" flag, with "ended" read from the coupon's own window, so that a sold-out coupon is refused as sold
out even once it has ended). How stale each level can be, and why that is safe:
- The flag only short-circuits a refusal. A stale "available" flag costs one Lua call, which decides
  against the live Redis seat count. The flag turns on when the script answers sold out; a seat given
  back afterwards (a failed send, a rejection) raises SeatsReleased, whose handler drops the flag here
  (``forget_sold_out``), so a stale flag lasts at most one local TTL in other containers. Should that
  call fail, a sold-out entry expires from Redis within SOLD_OUT_REDIS_TTL_S anyway.
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
from couponcore.adapters.driver_errors import on_redis
from couponcore.adapters.redis_client import RedisClient
from couponcore.domain.coupon import Coupon, IssueMode
from couponcore.observability import logger
from couponcore.services.ports import CachedCoupon, CouponReader, MetricsSink, SeatStore

LOCAL_TTL_S = 10.0
LOCAL_MAX_ENTRIES = 1000
REDIS_TTL_S = 30 * 60
# A "sold out" entry lives shorter: it must not outlast a seat given back whose forget_sold_out failed.
SOLD_OUT_REDIS_TTL_S = 60
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

    def __init__(
        self,
        ttl_s: float = LOCAL_TTL_S,
        max_entries: int = LOCAL_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl_s = ttl_s
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[int, tuple[float, Value]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: int) -> Value | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if found[0] <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return found[1]

    def put(self, key: int, value: Value) -> None:
        with self._lock:
            self._entries[key] = (self._clock() + self._ttl_s, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def drop(self, key: int) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


class ExpiringValue(Generic[Value]):
    """One value kept for a while (a container's copy of the highest coupon id)."""

    def __init__(self, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._ttl_s = ttl_s
        self._clock = clock
        self._value: tuple[float, Value] | None = None

    def get(self) -> Value | None:
        found = self._value  # one read: another thread may replace it meanwhile
        return found[1] if found is not None and found[0] > self._clock() else None

    def set(self, value: Value) -> None:
        self._value = (self._clock() + self._ttl_s, value)

    def clear(self) -> None:
        self._value = None


class HighestIdFilter:
    """Refuses ids above the highest coupon id without a lookup, so a burst of made-up ids never reaches
    MySQL. The highest id is kept in Redis (shared) and, once read, in this container's memory."""

    def __init__(self, client: RedisClient, reader: CouponReader, clock: Callable[[], float] = time.monotonic) -> None:
        self._redis = client
        self._reader = reader
        self._raise = client.register_script(RAISE_HIGHEST_ID)
        self._known: ExpiringValue[int] = ExpiringValue(LOCAL_TTL_S, clock)

    def excludes(self, coupon_id: int) -> bool:
        """Whether no coupon can have this id. An id above this container's copy is checked against
        Redis's (a coupon created a moment ago is above the copy)."""
        known = self._known.get()
        if known is not None and coupon_id <= known:
            return False
        stored: Any = self._redis.get(redis_keys.highest_coupon_id())
        if stored is None:  # expired or lost: MySQL once, then Redis again for everyone
            self._known.clear()
            self.saw(self._reader.highest_id())
        else:
            self._known.set(int(stored))
        return coupon_id > (self._known.get() or 0)

    def saw(self, coupon_id: int) -> None:
        """A coupon with this id exists. A refresh after each persisted batch of an old coupon costs no Redis
        call: this container's copy already covers its id."""
        known = self._known.get()
        if known is not None and coupon_id <= known:
            return
        self._raise(keys=[redis_keys.highest_coupon_id()], args=[coupon_id, HIGHEST_ID_REDIS_TTL_S])
        self._known.set(coupon_id)


class NoIdFilter:
    """Every id is looked up (once per id and MISSING TTL): what the catalog did before HighestIdFilter,
    kept for the benchmark that compares the two."""

    def excludes(self, coupon_id: int) -> bool:
        return False

    def saw(self, coupon_id: int) -> None:
        return None


class TwoLevelCouponCatalog:
    def __init__(
        self,
        client: RedisClient,
        reader: CouponReader,
        seats: SeatStore,
        metrics_sink: MetricsSink,
        id_filter: HighestIdFilter | NoIdFilter,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._redis = client
        self._reader = reader
        self._seats = seats
        self._metrics = metrics_sink
        self._id_filter = id_filter
        self.local: LocalCache[CachedCoupon] = LocalCache(clock=clock)
        self.missing: LocalCache[bool] = LocalCache(ttl_s=MISSING_LOCAL_TTL_S, clock=clock)
        self._loader_locks = [threading.Lock() for _ in range(LOADER_LOCKS)]

    def _in_memory(self, coupon_id: int) -> tuple[bool, CachedCoupon | None]:
        """(known here, the entry): a coupon, or an id remembered as missing."""
        cached = self.local.get(coupon_id)
        return cached is not None or bool(self.missing.get(coupon_id)), cached

    @on_redis
    def get(self, coupon_id: int) -> CachedCoupon | None:
        self._metrics.count(metrics.CACHE_LOOKUPS)
        known, cached = self._in_memory(coupon_id)
        if known:
            self._metrics.count(metrics.CACHE_LOCAL_HITS)
            return cached
        with self._loader_locks[coupon_id % LOADER_LOCKS]:  # one thread of this container per coupon goes on
            known, cached = self._in_memory(coupon_id)  # filled while this thread waited
            if known:
                return cached
            if self._id_filter.excludes(coupon_id):  # before the entry's read: a made-up id costs one GET
                self.missing.put(coupon_id, True)
                return None
            self._from_redis(coupon_id)
            known, cached = self._in_memory(coupon_id)
            if known:
                return cached
            return self._load_once(coupon_id)

    @on_redis
    def refresh(self, coupon_id: int) -> CachedCoupon | None:
        """Reload from MySQL into both levels (after a commit that changed what the rules see)."""
        coupon = self._reader.get(coupon_id)
        if coupon is None:
            self._redis.set(redis_keys.coupon_view(coupon_id), MISSING_ENTRY, ex=MISSING_REDIS_TTL_S)
            self.missing.put(coupon_id, True)
            return None
        cached = CachedCoupon(coupon, sold_out=not coupon.has_quantity_left(self._seats_taken(coupon)))
        self._store(cached)
        self._id_filter.saw(coupon_id)
        return cached

    def _seats_taken(self, coupon: Coupon) -> int:
        if coupon.issue_mode is IssueMode.ASYNC:
            return self._seats.seats_taken(coupon.id)
        return coupon.issued_quantity

    def _store(self, cached: CachedCoupon) -> None:
        ttl_s = SOLD_OUT_REDIS_TTL_S if cached.sold_out else REDIS_TTL_S
        self._redis.set(redis_keys.coupon_view(cached.coupon.id), to_json(cached), ex=ttl_s)
        self.local.put(cached.coupon.id, cached)

    @on_redis
    def mark_sold_out(self, coupon_id: int) -> None:
        """Redis said sold out: refuse the next requests from the cache, without a MySQL read."""
        cached = self.local.get(coupon_id) or self._from_redis(coupon_id, count=False)
        if cached is None or cached.sold_out:
            return
        self._store(CachedCoupon(cached.coupon, sold_out=True))

    @on_redis
    def forget_sold_out(self, coupon_id: int) -> None:
        """A seat was given back: the next request reloads the coupon (the Lua script decides meanwhile)."""
        self._redis.delete(redis_keys.coupon_view(coupon_id))
        self.local.drop(coupon_id)

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
            self._from_redis(coupon_id, count=False)
            known, cached = self._in_memory(coupon_id)
            if known:
                return cached
        return self.refresh(coupon_id)  # the loader is slow or gone: read MySQL ourselves
