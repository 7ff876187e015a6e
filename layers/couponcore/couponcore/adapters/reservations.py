"""The seat ports on Redis: ``RedisSeatStore`` for the hot path (the atomic reservation script and its
release) and ``RedisSeatLedger`` for batch_persist and reconciliation. All keys of a coupon share one
hash tag (see redis_keys); how a pending entry is stored is ``PendingReservation.stored``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

from couponcore.adapters import redis_keys
from couponcore.adapters.driver_errors import on_redis
from couponcore.adapters.redis_client import RedisClient
from couponcore.domain.reservation import PendingReservation, ResendRecord, ReserveOutcome

# KEYS: reserved set, pending hash, rejected set. ARGV: user id, total (-1 = unlimited), pending entry.
# Mirrors domain.reservation.reserve_outcome: duplicate first, then the quantity rule. A reservation also
# clears an earlier rejection.
RESERVE_SCRIPT = """
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 1 then
  return 2
end
local total = tonumber(ARGV[2])
if total >= 0 and redis.call('SCARD', KEYS[1]) >= total then
  return 3
end
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('SREM', KEYS[3], ARGV[1])
return 1
"""

# KEYS: reserved set, pending hash, rejected set, resend counts, last resends. ARGV: user id, token, mark
# rejected (0/1). Releases the seat only while the pending entry still carries this token: a later
# reservation of the same user, or one already confirmed in MySQL, is never undone by a stale release.
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
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
return 1
"""


def _seat_keys(coupon_id: int) -> list[str]:
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
    def reserve(self, seat: PendingReservation, total: int | None) -> ReserveOutcome:
        limit = -1 if total is None else total
        result: Any = self._reserve(keys=_seat_keys(seat.coupon_id), args=[seat.user_id, limit, seat.stored()])
        return ReserveOutcome(int(result))

    @on_redis
    def release(self, seat: PendingReservation, *, rejected: bool = False) -> bool:
        coupon_id = seat.coupon_id
        keys = [*_seat_keys(coupon_id), redis_keys.resend_counts(coupon_id), redis_keys.last_resends(coupon_id)]
        result = self._release(keys=keys, args=[seat.user_id, seat.token, 1 if rejected else 0])
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


class RedisSeatLedger:
    def __init__(self, client: RedisClient) -> None:
        self._redis = client

    @on_redis
    def confirm_persisted(self, coupon_id: int, user_ids: Iterable[int]) -> None:
        users = [str(user) for user in user_ids]
        if users:
            pipe = self._redis.pipeline(transaction=False)
            pipe.hdel(redis_keys.pending_reservations(coupon_id), *users)
            pipe.hdel(redis_keys.resend_counts(coupon_id), *users)
            pipe.hdel(redis_keys.last_resends(coupon_id), *users)
            pipe.execute()

    @on_redis
    def resend_records(self, coupon_id: int, user_ids: Sequence[int]) -> dict[int, ResendRecord]:
        if not user_ids:
            return {}
        fields = [str(user) for user in user_ids]
        pipe = self._redis.pipeline(transaction=False)
        pipe.hmget(redis_keys.resend_counts(coupon_id), fields)
        pipe.hmget(redis_keys.last_resends(coupon_id), fields)
        counts, lasts = pipe.execute()
        return {
            user: ResendRecord(int(count or 0), int(last or 0))
            for user, count, last in zip(user_ids, counts, lasts, strict=True)
        }

    @on_redis
    def record_resends(self, coupon_id: int, user_ids: Sequence[int], now_ms: int) -> None:
        if not user_ids:
            return
        pipe = self._redis.pipeline(transaction=True)  # one MULTI: a count and its time move together
        for user in user_ids:
            pipe.hincrby(redis_keys.resend_counts(coupon_id), str(user), 1)
        pipe.hset(redis_keys.last_resends(coupon_id), mapping=cast(Any, dict.fromkeys(map(str, user_ids), now_ms)))
        pipe.execute()

    @on_redis
    def pending(self, coupon_id: int) -> list[PendingReservation]:
        entries = self._redis.hscan_iter(redis_keys.pending_reservations(coupon_id), count=500)
        return [PendingReservation.from_stored(coupon_id, int(user), str(stored)) for user, stored in entries]

    @on_redis
    def restore_seats(self, coupon_id: int, user_ids: Iterable[int]) -> int:
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
        pipe = self._redis.pipeline(transaction=False)
        for coupon_id in coupon_ids:
            for key in redis_keys.all_of(coupon_id):
                pipe.expire(key, after_s, nx=True)
        pipe.execute()

    @on_redis
    def seat_holders(self, coupon_id: int) -> set[int]:
        return {int(user) for user in self._redis.sscan_iter(redis_keys.reserved_users(coupon_id), count=1000)}
