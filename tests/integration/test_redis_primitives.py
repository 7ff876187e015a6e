"""The reservation script and the distributed lock, against a real Redis."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from couponcore.adapters import redis_keys
from couponcore.adapters.fair_share import WINDOW_MS, RedisFairShare
from couponcore.adapters.redis_lock import LockTiming, RedisLock
from couponcore.adapters.reservations import RedisSeatLedger, RedisSeatStore
from couponcore.bootstrap import services
from couponcore.domain.coupon import Coupon, CouponType, IssueMode
from couponcore.domain.reservation import PendingReservation, ReserveOutcome, reserve_outcome
from couponcore.services.ports import IssuedFacts, LockNotAcquiredError, SeatState

pytestmark = pytest.mark.usefixtures("clean_state")
COUPON_IDS = itertools.count(10_000)  # a fresh coupon per example: hypothesis reuses the test's Redis
START, END = datetime(2026, 1, 1), datetime(2027, 1, 1)


@pytest.fixture
def ledger() -> RedisSeatLedger:
    return RedisSeatLedger(services().adapters.redis)


@pytest.fixture
def store(ledger: RedisSeatLedger) -> RedisSeatStore:
    ledger.rebuild(1, [], epoch_ms=1)  # coupon 1's (empty) seat state is complete, as a new coupon's is
    return RedisSeatStore(services().adapters.redis)


class TestReserveScript:
    def test_reserves_until_the_total(self, store: RedisSeatStore) -> None:
        assert [store.reserve(PendingReservation(1, user, f"t{user}", 1), 2) for user in (1, 2, 3)] == [
            ReserveOutcome.RESERVED,
            ReserveOutcome.RESERVED,
            ReserveOutcome.SOLD_OUT,
        ]
        assert store.seats_taken(1) == 2

    def test_duplicate_is_checked_before_quantity(self, store: RedisSeatStore) -> None:
        store.reserve(PendingReservation(1, 1, "t", 1), 1)
        assert (
            store.reserve(PendingReservation(1, 1, "t2", 1), 1) is ReserveOutcome.DUPLICATE
        )  # sold out too, duplicate wins

    def test_unlimited(self, store: RedisSeatStore) -> None:
        assert all(
            store.reserve(PendingReservation(1, user, "t", 1), None) is ReserveOutcome.RESERVED
            for user in range(1, 500)
        )

    def test_every_key_of_a_coupon_shares_one_hash_tag(self) -> None:
        keys = [
            redis_keys.reserved_users(42),
            redis_keys.pending_reservations(42),
            redis_keys.rejected_users(42),
            *redis_keys.all_of(42),
        ]
        assert {key[key.index("{") : key.index("}") + 1] for key in keys} == {"{42}"}

    def test_release_only_by_the_reserving_token(self, store: RedisSeatStore) -> None:
        store.reserve(PendingReservation(1, 5, "mine", 1), 10)
        assert store.release(PendingReservation(1, 5, "someone-else", 1)) is False
        assert store.holds_seat(1, 5)
        assert store.release(PendingReservation(1, 5, "mine", 1)) is True
        assert not store.holds_seat(1, 5)
        assert store.reservation_state(1, 5) == SeatState(holds_seat=False, rejected=False, counted=True)

    def test_release_as_rejected_is_remembered_until_a_new_reservation(self, store: RedisSeatStore) -> None:
        store.reserve(PendingReservation(1, 5, "mine", 1), 10)
        store.release(PendingReservation(1, 5, "mine", 1), rejected=True)
        assert store.reservation_state(1, 5) == SeatState(holds_seat=False, rejected=True, counted=True)
        store.reserve(PendingReservation(1, 5, "again", 2), 10)
        assert store.reservation_state(1, 5) == SeatState(holds_seat=True, rejected=False, counted=True, pending=True)

    def test_confirmed_seats_stay_taken_but_not_pending(self, store: RedisSeatStore) -> None:
        store.reserve(PendingReservation(1, 5, "mine", 1), 10)
        RedisSeatLedger(services().adapters.redis).confirm_persisted(
            1, [5], {5: IssuedFacts(1_800_000_000_123_456, None)}
        )
        assert store.holds_seat(1, 5) and not RedisSeatLedger(services().adapters.redis).pending(1)
        assert store.reservation_state(1, 5) == SeatState(
            holds_seat=True,
            rejected=False,
            counted=True,
            pending=False,
            issued=IssuedFacts(1_800_000_000_123_456, None),
        )
        assert store.release(PendingReservation(1, 5, "mine", 1)) is False  # a persisted seat is never given back

    def test_a_redemption_s_mark_outlasts_any_late_remember_and_older_entries_still_answer(
        self, store: RedisSeatStore
    ) -> None:
        facts = IssuedFacts(1_800_000_000_123_456, 1_800_086_400_123_456)
        store.remember_issued(1, 5, facts)
        assert store.reservation_state(1, 5).issued == facts
        store.forget_issued(1, 5)  # a redemption is about to write MySQL
        store.remember_issued(1, 5, facts)  # a poll that read MySQL before it
        RedisSeatLedger(services().adapters.redis).confirm_persisted(1, [5], {5: facts})  # a late confirmation
        assert store.reservation_state(1, 5).issued is None  # the status route reads MySQL for this one
        # An entry written before coupons could be used: a bare date, an issue that never expires.
        services().adapters.redis.hset(redis_keys.issued_at(1), "6", "1800000000123456")
        assert store.reservation_state(1, 6).issued == IssuedFacts(1_800_000_000_123_456, None)


class TestFairShare:
    def test_the_script_and_the_admit_call_count_one_window_per_user_and_coupon(self, store: RedisSeatStore) -> None:
        redis = services().adapters.redis
        fair_share = RedisFairShare(redis, per_second=3)
        assert [fair_share.admit(1, 5) for _ in range(2)] == [True, True]
        outcomes = [store.reserve(PendingReservation(1, 5, f"t{n}", 1), 10, fair_share_per_s=3) for n in range(2)]
        assert outcomes == [ReserveOutcome.RESERVED, ReserveOutcome.OVER_FAIR_SHARE]
        assert fair_share.admit(1, 6) and fair_share.admit(2, 5)  # each user and coupon counts on its own
        assert 0 < int(redis.pttl(redis_keys.user_requests(1, 5))) <= WINDOW_MS
        redis.delete(redis_keys.user_requests(1, 5))  # the window passed
        assert fair_share.admit(1, 5)
        assert RedisFairShare(redis, per_second=0).admit(1, 5)  # 0: no limit, nothing counted


class TestCompletenessProof:
    def test_nothing_is_sold_from_a_state_not_known_complete(self, ledger: RedisSeatLedger) -> None:
        store = RedisSeatStore(services().adapters.redis)
        assert store.reserve(PendingReservation(7, 1, "t", 1), 10) is ReserveOutcome.UNCOUNTED
        assert not store.holds_seat(7, 1) and ledger.uncounted([7]) == [7]

    def test_a_loss_pauses_and_the_rebuild_counts_mysqls_issues_and_what_is_pending(
        self, ledger: RedisSeatLedger
    ) -> None:
        store = RedisSeatStore(services().adapters.redis)
        ledger.rebuild(7, [], epoch_ms=1)
        store.reserve(PendingReservation(7, 1, "a", 1), 10)
        store.reserve(PendingReservation(7, 2, "b", 1), 10)
        assert ledger.forget_count(7, now_ms=5_000) is True
        assert ledger.forget_count(7, now_ms=6_000) is False  # already paused: the first sight counts
        assert ledger.loss_seen_at(7, now_ms=7_000) == 5_000
        assert store.reserve(PendingReservation(7, 3, "c", 1), 10) is ReserveOutcome.UNCOUNTED
        ledger.confirm_persisted(7, [1])  # user 1 is in MySQL; user 2 still pending
        assert ledger.rebuild(7, [1, 9], epoch_ms=8_000) == 5_000  # 9: issued, lost from the set
        assert ledger.seat_holders(7) == {1, 2, 9}
        assert ledger.loss_seen_at(7, now_ms=9_000) is None  # counted again
        assert ledger.rebuild(7, [], epoch_ms=9_000) is None  # one rebuild per loss
        assert store.reserve(PendingReservation(7, 3, "c", 1), 4) is ReserveOutcome.RESERVED

    def test_confirming_an_issue_redis_does_not_hold_reports_the_loss(self, ledger: RedisSeatLedger) -> None:
        store = RedisSeatStore(services().adapters.redis)
        ledger.rebuild(7, [], epoch_ms=1)
        store.reserve(PendingReservation(7, 1, "a", 1), 10)
        assert ledger.confirm_persisted(7, [1, 2]) == 1  # 2 is in MySQL but held no seat here


LOCK_KEY = redis_keys.issue_lock(1)


class TestLock:
    def lock(self, wait_s: float = 1.0, lease_s: float = 1.0) -> RedisLock:
        return RedisLock(services().adapters.redis, LockTiming(wait_s=wait_s, lease_s=lease_s))

    def test_excludes_concurrent_holders(self) -> None:
        lock, inside, overlaps = self.lock(wait_s=10), [0], [0]

        def work() -> None:
            for _ in range(20):
                with lock.hold(1, wait_s=10):
                    inside[0] += 1
                    if inside[0] > 1:
                        overlaps[0] += 1
                    time.sleep(0.0005)
                    inside[0] -= 1

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert overlaps[0] == 0

    def test_wait_runs_out_while_held(self) -> None:
        holder, waiter = self.lock(), self.lock(wait_s=0.2)
        with holder.hold(1, wait_s=1):
            started = time.monotonic()
            with pytest.raises(LockNotAcquiredError), waiter.hold(1, wait_s=1):
                pass
            assert 0.15 < time.monotonic() - started < 1.0

    def test_the_callers_shorter_wait_wins(self) -> None:
        holder, waiter = self.lock(), self.lock(wait_s=5)
        with holder.hold(1, wait_s=1):
            started = time.monotonic()
            with pytest.raises(LockNotAcquiredError), waiter.hold(1, wait_s=0.1):
                pass
            assert time.monotonic() - started < 0.5

    def test_a_vanished_holders_lease_frees_the_lock(self) -> None:
        # The holder takes the lock and never releases it (its process died): a waiter gets it once the
        # lease runs out, not before.
        vanished = self.lock(lease_s=0.3)
        waiter = self.lock(wait_s=2)
        context = vanished.hold(1, wait_s=1)
        context.__enter__()  # never exited
        started = time.monotonic()
        with waiter.hold(1, wait_s=2) as waited_s:
            assert 0.2 < waited_s < 1.5  # the lease (0.3 s), not the wait (2 s)
        assert time.monotonic() - started > 0.2

    def test_only_the_owner_releases(self) -> None:
        first, second = self.lock(lease_s=0.2), self.lock(wait_s=2, lease_s=5)
        context = first.hold(1, wait_s=1)
        context.__enter__()
        with second.hold(1, wait_s=2):  # after the first lease ran out
            context.__exit__(None, None, None)  # the first owner's late release must not free the second's lock
            assert services().adapters.redis.exists(LOCK_KEY) == 1
        assert services().adapters.redis.exists(LOCK_KEY) == 0

    def test_released_when_the_critical_section_raises(self) -> None:
        lock = self.lock()
        with pytest.raises(RuntimeError), lock.hold(1, wait_s=1):
            raise RuntimeError("boom")
        assert services().adapters.redis.exists(LOCK_KEY) == 0


class TestScriptAgreesWithTheDomain:
    """The Lua script decides what the domain decides: duplicate first, then Coupon.has_quantity_left."""

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        total=st.one_of(st.none(), st.integers(min_value=1, max_value=4)),
        users=st.lists(st.integers(min_value=1, max_value=6), max_size=10),
    )
    def test_every_sequence_of_requests(
        self, store: RedisSeatStore, ledger: RedisSeatLedger, total: int | None, users: list[int]
    ) -> None:
        coupon_id = next(COUPON_IDS)
        ledger.rebuild(coupon_id, [], epoch_ms=1)
        rule = Coupon(coupon_id, "t", CouponType.FIRST_COME_FIRST_SERVED, total, 0, 0, 0, START, END, IssueMode.ASYNC)
        held: set[int] = set()
        for user in users:
            expected = reserve_outcome(
                counted=True, holds_seat=user in held, taken=len(held), total=rule.total_quantity
            )
            if expected is ReserveOutcome.RESERVED:
                held.add(user)
            assert store.reserve(PendingReservation(coupon_id, user, f"t{user}", 1), total) is expected
        assert ledger.seat_holders(coupon_id) == held
