"""The SeatStore port on Redis: seats of ASYNC coupons, the atomic reservation script, its release, and
what batch_persist and reconciliation need. All keys of a coupon share one hash tag (see redis_keys)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any, cast

from couponcore.adapters import redis_keys
from couponcore.adapters.faults import on_redis
from couponcore.adapters.redis_client import RedisClient
from couponcore.services.ports import PendingReservation, ReserveOutcome

# KEYS: reserved set, pending hash, rejected set. ARGV: user id, total (-1 = unlimited), token, now (ms).
# The seed's order: duplicate first, then the quantity rule (Coupon.has_quantity_left, mirrored).
# A reservation also clears an earlier rejection.
RESERVE_SCRIPT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return 2
end
local total = tonumber(ARGV[2])
if total >= 0 and redis.call('SCARD', KEYS[1]) >= total then
  return 3
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3] .. '|' .. ARGV[4])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""

# KEYS: reserved set, pending hash, rejected set, the coupon's cached view, resends. ARGV: user id, token, mark
# rejected (0/1). Releases the seat only while the pending entry still carries this token: a later
# reservation of the same user, or one already confirmed in MySQL, is never undone by a stale release.
# The cached view goes with the seat, in the same step: a "sold out" flag must not outlive a free seat
# (the next request reloads the coupon; until then the Lua script decides on the live count anyway).
RELEASE_SCRIPT = """
local entry = redis.call('HGET', KEYS[2], ARGV[1])
if not entry or string.sub(entry, 1, string.len(ARGV[2]) + 1) ~= ARGV[2] .. '|' then
  return 0
end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('SREM', KEYS[1], ARGV[1])
if ARGV[3] == '1' then
  redis.call('SADD', KEYS[3], ARGV[1])
end
redis.call('DEL', KEYS[4])
redis.call('HDEL', KEYS[5], ARGV[1])
return 1
"""


# The longest wait between two resends of one reservation (reconcile keeps trying, but calmly).
MAX_RESEND_GAP_MS = 30 * 60 * 1000


def _keys(coupon_id: int) -> list[str]:
    return [
        redis_keys.reserved_users(coupon_id),
        redis_keys.pending_reservations(coupon_id),
        redis_keys.rejected_users(coupon_id),
    ]


class RedisSeatStore:
    def __init__(self, client: RedisClient) -> None:
        self._redis = client
        self._reserve = client.register_script(RESERVE_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)

    @on_redis
    def reserve(self, coupon_id: int, user_id: int, total: int | None, token: str, now_ms: int) -> ReserveOutcome:
        limit = -1 if total is None else total
        result: Any = self._reserve(keys=_keys(coupon_id), args=[user_id, limit, token, now_ms])
        return ReserveOutcome(int(result))

    @on_redis
    def release(self, coupon_id: int, user_id: int, token: str, *, rejected: bool = False) -> bool:
        """Give the seat back if it is still this token's; with ``rejected``, remember the refusal."""
        keys = [*_keys(coupon_id), redis_keys.coupon_view(coupon_id), redis_keys.resends(coupon_id)]
        result = self._release(keys=keys, args=[user_id, token, 1 if rejected else 0])
        return int(cast(int, result)) == 1

    @on_redis
    def holds_seat(self, coupon_id: int, user_id: int) -> bool:
        return bool(self._redis.sismember(redis_keys.reserved_users(coupon_id), str(user_id)))

    @on_redis
    def seats_taken(self, coupon_id: int) -> int:
        taken: Any = self._redis.scard(redis_keys.reserved_users(coupon_id))
        return int(taken)

    @on_redis
    def reservation_state(self, coupon_id: int, user_id: int) -> tuple[bool, bool]:
        """(holds a seat, was rejected), in one round trip."""
        pipe = self._redis.pipeline(transaction=False)
        pipe.sismember(redis_keys.reserved_users(coupon_id), str(user_id))
        pipe.sismember(redis_keys.rejected_users(coupon_id), str(user_id))
        holds, rejected = pipe.execute()
        return bool(holds), bool(rejected)

    @on_redis
    def confirm_persisted(self, coupon_id: int, user_ids: Iterable[int]) -> None:
        """MySQL holds these issues: they are no longer pending (their seats stay taken)."""
        users = [str(user) for user in user_ids]
        if users:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hdel(redis_keys.pending_reservations(coupon_id), *users)
            pipe.hdel(redis_keys.resends(coupon_id), *users)
            pipe.execute()

    @on_redis
    def resends_due(self, coupon_id: int, user_ids: Sequence[int], now_ms: int, first_after_ms: int) -> list[int]:
        """Of these pending users, those whose next resend is due: the gap doubles with every resend
        (first_after_ms, then twice that, ...) up to MAX_RESEND_GAP_MS, so an outage does not queue a
        reservation again on every pass."""
        if not user_ids:
            return []
        entries = self._redis.hmget(redis_keys.resends(coupon_id), [str(u) for u in user_ids])
        due = []
        for user, entry in zip(user_ids, cast(list[Any], entries), strict=True):
            count, _, last = str(entry or "0|0").partition("|")
            gap = min(first_after_ms * 2 ** int(count), MAX_RESEND_GAP_MS)
            if int(count) == 0 or now_ms - int(last) >= gap:
                due.append(user)
        return due

    @on_redis
    def record_resends(self, coupon_id: int, user_ids: Iterable[int], now_ms: int) -> None:
        key = redis_keys.resends(coupon_id)
        users = [str(user) for user in user_ids]
        counts = cast(list[Any], self._redis.hmget(key, users)) if users else []
        mapping = {
            user: f"{int(str(entry or '0|0').partition('|')[0]) + 1}|{now_ms}"
            for user, entry in zip(users, counts, strict=True)
        }
        if mapping:
            self._redis.hset(key, mapping=cast(Any, mapping))

    @on_redis
    def pending(self, coupon_id: int) -> Iterator[PendingReservation]:
        return iter(list(self._pending(coupon_id)))  # read here, so that a Redis error surfaces translated

    def _pending(self, coupon_id: int) -> Iterator[PendingReservation]:
        for user, entry in self._redis.hscan_iter(redis_keys.pending_reservations(coupon_id), count=500):
            token, _, reserved_at = str(entry).partition("|")
            yield PendingReservation(coupon_id, int(user), token, int(reserved_at or 0))

    @on_redis
    def restore_seats(self, coupon_id: int, user_ids: Iterable[int]) -> int:
        """Put persisted issues back in the reserved set (after Redis lost data); returns how many were missing."""
        users = [str(user) for user in user_ids]
        if not users:
            return 0
        return int(cast(Any, self._redis.sadd(redis_keys.reserved_users(coupon_id), *users)))

    @on_redis
    def with_pending(self, coupon_ids: Sequence[int]) -> list[int]:
        """Those of the coupons that still have a reservation waiting for MySQL (one round trip)."""
        pipe = self._redis.pipeline(transaction=False)
        for coupon_id in coupon_ids:
            pipe.exists(redis_keys.pending_reservations(coupon_id))
        return [coupon_id for coupon_id, found in zip(coupon_ids, pipe.execute(), strict=True) if found]

    @on_redis
    def let_expire(self, coupon_ids: Sequence[int], after_s: int) -> None:
        """A settled coupon's keys expire (once: a key that already expires keeps its time)."""
        pipe = self._redis.pipeline(transaction=False)
        for coupon_id in coupon_ids:
            for key in redis_keys.all_of(coupon_id):
                pipe.expire(key, after_s, nx=True)
        pipe.execute()

    @on_redis
    def seat_holders(self, coupon_id: int) -> set[int]:
        return {int(user) for user in self._redis.sscan_iter(redis_keys.reserved_users(coupon_id), count=1000)}
