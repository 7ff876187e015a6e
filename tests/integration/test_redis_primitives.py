"""The reservation script and the distributed lock, against a real Redis."""

from __future__ import annotations

import threading
import time

import pytest

from couponcore.adapters import redis_keys
from couponcore.adapters.redis_lock import LockTimeoutError, LockTiming, RedisLock
from couponcore.adapters.reservations import ReservationStore, ReserveOutcome
from couponcore.bootstrap import container

pytestmark = pytest.mark.usefixtures("clean_state")


@pytest.fixture
def store() -> ReservationStore:
    return ReservationStore(container().redis)


class TestReserveScript:
    def test_reserves_until_the_total(self, store: ReservationStore) -> None:
        assert [store.reserve(1, user, 2, f"t{user}", 1) for user in (1, 2, 3)] == [
            ReserveOutcome.RESERVED,
            ReserveOutcome.RESERVED,
            ReserveOutcome.SOLD_OUT,
        ]
        assert store.seats_taken(1) == 2

    def test_duplicate_is_checked_before_quantity(self, store: ReservationStore) -> None:
        store.reserve(1, 1, 1, "t", 1)
        assert store.reserve(1, 1, 1, "t2", 1) is ReserveOutcome.DUPLICATE  # sold out too, duplicate wins

    def test_unlimited(self, store: ReservationStore) -> None:
        assert all(store.reserve(1, user, None, "t", 1) is ReserveOutcome.RESERVED for user in range(1, 500))

    def test_every_key_of_a_coupon_shares_one_hash_tag(self) -> None:
        keys = [
            redis_keys.reserved_users(42),
            redis_keys.pending_reservations(42),
            redis_keys.rejected_users(42),
            redis_keys.issue_lock(42),
            redis_keys.coupon_view(42),
        ]
        assert {key[key.index("{") : key.index("}") + 1] for key in keys} == {"{42}"}

    def test_release_only_by_the_reserving_token(self, store: ReservationStore) -> None:
        store.reserve(1, 5, 10, "mine", 1)
        assert store.release(1, 5, "someone-else") is False
        assert store.holds_seat(1, 5)
        assert store.release(1, 5, "mine") is True
        assert not store.holds_seat(1, 5)
        assert store.reservation_state(1, 5) == (False, False)

    def test_release_as_rejected_is_remembered_until_a_new_reservation(self, store: ReservationStore) -> None:
        store.reserve(1, 5, 10, "mine", 1)
        store.release(1, 5, "mine", rejected=True)
        assert store.reservation_state(1, 5) == (False, True)
        store.reserve(1, 5, 10, "again", 2)
        assert store.reservation_state(1, 5) == (True, False)

    def test_confirmed_seats_stay_taken_but_not_pending(self, store: ReservationStore) -> None:
        store.reserve(1, 5, 10, "mine", 1)
        store.confirm_persisted(1, [5])
        assert store.holds_seat(1, 5) and not list(store.pending(1))
        assert store.release(1, 5, "mine") is False  # a persisted seat is never given back


class TestLock:
    def lock(self, wait_s: float = 1.0, lease_s: float = 1.0) -> RedisLock:
        return RedisLock(container().redis, LockTiming(wait_s=wait_s, lease_s=lease_s))

    def test_excludes_concurrent_holders(self) -> None:
        lock, inside, overlaps = self.lock(wait_s=10), [0], [0]

        def work() -> None:
            for _ in range(20):
                with lock.hold("coupon:{1}:lock"):
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
        with holder.hold("coupon:{1}:lock"):
            started = time.monotonic()
            with pytest.raises(LockTimeoutError), waiter.hold("coupon:{1}:lock"):
                pass
            assert 0.15 < time.monotonic() - started < 1.0

    def test_lease_expires_if_the_holder_vanishes(self) -> None:
        short = self.lock(lease_s=0.2)
        redis = container().redis
        redis.set("coupon:{1}:lock", "a-dead-owner", px=200)
        time.sleep(0.3)
        with short.hold("coupon:{1}:lock") as held:
            assert held.waited_s < 0.1

    def test_only_the_owner_releases(self) -> None:
        lock = self.lock()
        with lock.hold("coupon:{1}:lock"):
            assert lock.release_if_owner("coupon:{1}:lock", "not-the-owner") is False
            assert container().redis.exists("coupon:{1}:lock") == 1
        assert container().redis.exists("coupon:{1}:lock") == 0  # released in finally

    def test_released_when_the_critical_section_raises(self) -> None:
        lock = self.lock()
        with pytest.raises(RuntimeError), lock.hold("coupon:{1}:lock"):
            raise RuntimeError("boom")
        assert container().redis.exists("coupon:{1}:lock") == 0

    def test_a_lease_shorter_than_the_critical_section_is_refused(self) -> None:
        with pytest.raises(ValueError, match="must exceed"):
            LockTiming(wait_s=3, lease_s=1).check_covers(critical_section_bound_s=3)
        LockTiming(wait_s=3, lease_s=4).check_covers(critical_section_bound_s=3)
