"""The seat ports on Redis: ``RedisSeatStore`` for the hot path (the atomic reservation script and its
release) and ``RedisSeatLedger`` for batch_persist and reconciliation. All keys of a coupon share one
hash tag (see redis_keys); how a pending entry is stored is ``PendingReservation.stored``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, cast

from redis.cluster import RedisCluster

from couponcore.adapters import redis_keys
from couponcore.adapters.driver_errors import on_redis
from couponcore.adapters.fair_share import FAIR_SHARE_STEP
from couponcore.adapters.redis_client import RedisClient
from couponcore.domain.errors import DependencyUnavailableError
from couponcore.domain.reservation import PendingReservation, ResendRecord, ReserveOutcome
from couponcore.services.ports import IssuedFacts, SeatState

# KEYS: reserved set, pending hash, rejected set, counted marker, and with a fair share this user's request
# count (fair_share.FAIR_SHARE_STEP). ARGV: user id, total (-1 = unlimited), pending entry, fair share per
# second (0 or absent: none). The fair share first: a request over it changes nothing else. Then it mirrors
# domain.reservation.reserve_outcome: nothing from a state not known complete, then the duplicate, then the
# quantity rule. A reservation also clears an earlier rejection.
RESERVE_SCRIPT = (
    """
local fair_share = tonumber(ARGV[4] or '0')
if fair_share > 0 then
"""
    + FAIR_SHARE_STEP
    + """
  if requests > fair_share then
    return 5
  end
end
if redis.call('EXISTS', KEYS[4]) == 0 then
  return 4
end
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
)

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


# KEYS: reserved set, issued-at hash, pending hash, resend counts, last resends. ARGV: the issued-at hash's TTL,
# the number of users n, the n users MySQL holds, then (user, "issued:expire") for each it has just issued.
# Returns how many of the n hold no seat here. Each issue's date goes in before its pending entry goes (a
# status request between them sees ISSUED, never nothing). One command however large the batch: a pipeline
# of one HSETNX a row cost the client more than MySQL's insert.
CONFIRM_PERSISTED_SCRIPT = """
local n = tonumber(ARGV[2])
local unheld = 0
for i = 3, n + 2 do
  if redis.call('SISMEMBER', KEYS[1], ARGV[i]) == 0 then
    unheld = unheld + 1
  end
end
if #ARGV > n + 2 then
  for i = n + 3, #ARGV, 2 do
    redis.call('HSETNX', KEYS[2], ARGV[i], ARGV[i + 1])
  end
  redis.call('EXPIRE', KEYS[2], ARGV[1])
end
for i = 3, n + 2, 1000 do
  local last = math.min(i + 999, n + 2)
  for k = 3, 5 do
    redis.call('HDEL', KEYS[k], unpack(ARGV, i, last))
  end
end
return unheld
"""

# KEYS: counted marker, lost-at. ARGV: now (ms). The state is no longer known complete: sell nothing until
# it is rebuilt; the pause counts from the first time the loss was seen.
FORGET_COUNT_SCRIPT = """
local was_counted = redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[1], 'NX')
return was_counted
"""

# KEYS: counted marker, lost-at. ARGV: now (ms). Nil while the state is counted; else when the loss was first
# seen (recorded now if nobody had).
LOSS_SEEN_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
redis.call('SET', KEYS[2], ARGV[1], 'NX')
return redis.call('GET', KEYS[2])
"""

# KEYS: counted marker, lost-at, the set being built (MySQL's issued users), reserved set, pending hash.
# ARGV: the rebuild's epoch (ms). Completes a rebuild unless another completed first: the seats are MySQL's
# issues plus the reservations still pending here (sent, or to be resent, and not yet in MySQL), and the
# marker says so. Returns when the loss was first seen (0 if never), or -1 if the state was counted already.
FINISH_REBUILD_SCRIPT = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('DEL', KEYS[3])
  return -1
end
local pending = redis.call('HKEYS', KEYS[5])
for i = 1, #pending, 1000 do
  redis.call('SADD', KEYS[3], unpack(pending, i, math.min(i + 999, #pending)))
end
if redis.call('EXISTS', KEYS[3]) == 1 then
  redis.call('RENAME', KEYS[3], KEYS[4])
else
  redis.call('DEL', KEYS[4])
end
redis.call('SET', KEYS[1], ARGV[1])
local lost_at = redis.call('GET', KEYS[2])
redis.call('DEL', KEYS[2])
return tonumber(lost_at or '0')
"""
REBUILD_LEASE_MS = 10_000
CHUNK = 1000


def reserve_keys(coupon_id: int) -> list[str]:
    """RESERVE_SCRIPT's KEYS, in its order (the benchmark's floor calls the script with them too)."""
    return [
        redis_keys.reserved_users(coupon_id),
        redis_keys.pending_reservations(coupon_id),
        redis_keys.rejected_users(coupon_id),
        redis_keys.seats_counted(coupon_id),
    ]


class RedisSeatStore:
    """With ``replica_acks``, a reservation counts only once that many replicas hold it (WAIT, sent in the
    same pipeline as the script: one round trip, which lasts until the replicas answer). One that they do not
    acknowledge in time is given back, and the caller hears that Redis is unavailable: a replica promoted
    after a failover then holds every seat that was answered 202."""

    def __init__(self, client: RedisClient, *, replica_acks: int = 0, ack_timeout_ms: int = 100) -> None:
        self._redis = client
        self._reserve = client.register_script(RESERVE_SCRIPT)
        self._release = client.register_script(RELEASE_SCRIPT)
        self._replica_acks = replica_acks
        self._ack_timeout_ms = ack_timeout_ms

    @on_redis
    def reserve(self, seat: PendingReservation, total: int | None, *, fair_share_per_s: int = 0) -> ReserveOutcome:
        keys = reserve_keys(seat.coupon_id)
        args: list[Any] = [seat.user_id, -1 if total is None else total, seat.stored()]
        if fair_share_per_s:
            keys.append(redis_keys.user_requests(seat.coupon_id, seat.user_id))
            args.append(fair_share_per_s)
        if not self._replica_acks:
            return ReserveOutcome(int(cast(Any, self._reserve(keys=keys, args=args))))
        outcome, acks = self._reserve_and_wait(keys, args)
        if outcome is ReserveOutcome.RESERVED and acks < self._replica_acks:
            self.release(seat)
            raise DependencyUnavailableError("redis", RuntimeError(f"{acks} of {self._replica_acks} replicas"))
        return outcome

    def _reserve_and_wait(self, keys: list[str], args: list[Any]) -> tuple[ReserveOutcome, int]:
        # WAIT counts the writes of its own connection: in a cluster, the pipeline goes to the keys' node.
        client: Any = self._redis
        if isinstance(client, RedisCluster):
            client = client.get_node_from_key(keys[0]).redis_connection  # type: ignore[no-untyped-call]
        pipe = client.pipeline(transaction=False)
        self._reserve(keys=keys, args=args, client=pipe)
        pipe.execute_command("WAIT", self._replica_acks, self._ack_timeout_ms)
        result, acks = pipe.execute(raise_on_error=False)
        if isinstance(result, Exception):
            raise result
        # A WAIT cut short (UNBLOCKED: the server changed role in a failover) acknowledged nothing.
        return ReserveOutcome(int(result)), 0 if isinstance(acks, Exception) else int(acks)

    @on_redis
    def release(self, seat: PendingReservation, *, rejected: bool = False) -> bool:
        coupon_id = seat.coupon_id
        keys = [
            redis_keys.reserved_users(coupon_id),
            redis_keys.pending_reservations(coupon_id),
            redis_keys.rejected_users(coupon_id),
            redis_keys.resend_counts(coupon_id),
            redis_keys.last_resends(coupon_id),
        ]
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
    def reservation_state(self, coupon_id: int, user_id: int) -> SeatState:
        user = str(user_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.sismember(redis_keys.reserved_users(coupon_id), user)
        pipe.sismember(redis_keys.rejected_users(coupon_id), user)
        pipe.exists(redis_keys.seats_counted(coupon_id))
        pipe.hexists(redis_keys.pending_reservations(coupon_id), user)
        pipe.hget(redis_keys.issued_at(coupon_id), user)
        holds, rejected, counted, pending, issued = pipe.execute()
        return SeatState(
            holds_seat=bool(holds),
            rejected=bool(rejected),
            counted=bool(counted),
            pending=bool(pending),
            issued=_parse_facts(issued),
        )

    @on_redis
    def remember_issued(self, coupon_id: int, user_id: int, facts: IssuedFacts) -> None:
        _remember_issued(self._redis.pipeline(transaction=False), coupon_id, {user_id: facts}).execute()

    @on_redis
    def forget_issued(self, coupon_id: int, user_id: int) -> None:
        key = redis_keys.issued_at(coupon_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.hset(key, str(user_id), USE_CHANGED)
        pipe.expire(key, redis_keys.ISSUED_AT_TTL_S)  # the mark outlives every fact kept beside it
        pipe.execute()


# An issue's kept facts: "<issued µs>:<expires µs or empty>". USE_CHANGED marks an issue whose use changed:
# facts are only ever added where nothing is kept (HSETNX), so a poll that read MySQL before a redemption
# cannot put back what the redemption's mark replaced. Entries of versions before coupons could be used (a
# bare date) stand for issues that never expire, kept unused: a redemption since would have marked them.
USE_CHANGED = "-"


def _parse_facts(raw: Any) -> IssuedFacts | None:
    if raw is None:
        return None
    issued, _, expires = (raw.decode() if isinstance(raw, bytes) else str(raw)).partition(":")
    if not issued.isdigit() or not (expires.isdigit() or expires == ""):
        return None  # USE_CHANGED
    return IssuedFacts(int(issued), int(expires) if expires else None)


def _facts_value(fact: IssuedFacts) -> str:
    return f"{fact.issued_at_us}:{'' if fact.expire_at_us is None else fact.expire_at_us}"


def _remember_issued(pipe: Any, coupon_id: int, facts: Mapping[int, IssuedFacts]) -> Any:
    if facts:
        key = redis_keys.issued_at(coupon_id)
        for user, fact in facts.items():
            pipe.hsetnx(key, str(user), _facts_value(fact))
        pipe.expire(key, redis_keys.ISSUED_AT_TTL_S)
    return pipe


class RedisSeatLedger:
    def __init__(self, client: RedisClient) -> None:
        self._redis = client
        self._forget_count = client.register_script(FORGET_COUNT_SCRIPT)
        self._loss_seen = client.register_script(LOSS_SEEN_SCRIPT)
        self._finish_rebuild = client.register_script(FINISH_REBUILD_SCRIPT)
        self._confirm_persisted = client.register_script(CONFIRM_PERSISTED_SCRIPT)

    @on_redis
    def confirm_persisted(
        self, coupon_id: int, user_ids: Iterable[int], issued: Mapping[int, IssuedFacts] | None = None
    ) -> int:
        users = [str(user) for user in user_ids]
        if not users:
            return 0
        keys = [
            redis_keys.reserved_users(coupon_id),
            redis_keys.issued_at(coupon_id),
            redis_keys.pending_reservations(coupon_id),
            redis_keys.resend_counts(coupon_id),
            redis_keys.last_resends(coupon_id),
        ]
        facts = [part for user, fact in (issued or {}).items() for part in (user, _facts_value(fact))]
        return int(self._confirm_persisted(keys=keys, args=[redis_keys.ISSUED_AT_TTL_S, len(users), *users, *facts]))

    def _counted_keys(self, coupon_id: int) -> list[str]:
        return [redis_keys.seats_counted(coupon_id), redis_keys.seats_lost_at(coupon_id)]

    @on_redis
    def forget_count(self, coupon_id: int, now_ms: int) -> bool:
        return int(cast(Any, self._forget_count(keys=self._counted_keys(coupon_id), args=[now_ms]))) == 1

    @on_redis
    def loss_seen_at(self, coupon_id: int, now_ms: int) -> int | None:
        seen: Any = self._loss_seen(keys=self._counted_keys(coupon_id), args=[now_ms])
        return None if seen is None else int(seen)

    @on_redis
    def uncounted(self, coupon_ids: Sequence[int]) -> list[int]:
        pipe = self._redis.pipeline(transaction=False)
        for coupon_id in coupon_ids:
            pipe.exists(redis_keys.seats_counted(coupon_id))
        return [coupon_id for coupon_id, found in zip(coupon_ids, pipe.execute(), strict=True) if not found]

    @on_redis
    def rebuild(self, coupon_id: int, issued_users: Iterable[int], epoch_ms: int) -> int | None:
        lock = redis_keys.rebuild_lock(coupon_id)
        if not self._redis.set(lock, epoch_ms, nx=True, px=REBUILD_LEASE_MS):
            return None  # another process is rebuilding it
        try:
            building = redis_keys.seats_rebuild(coupon_id)
            users = [str(user) for user in issued_users]
            pipe = self._redis.pipeline(transaction=False)
            pipe.delete(building)
            for start in range(0, len(users), CHUNK):
                pipe.sadd(building, *users[start : start + CHUNK])
            pipe.execute()
            keys = [
                *self._counted_keys(coupon_id),
                building,
                redis_keys.reserved_users(coupon_id),
                redis_keys.pending_reservations(coupon_id),
            ]
            lost_at = int(cast(Any, self._finish_rebuild(keys=keys, args=[epoch_ms])))
        finally:
            self._redis.delete(lock)
        return None if lost_at < 0 else lost_at

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
