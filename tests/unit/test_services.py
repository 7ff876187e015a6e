"""Every use case on in-memory fakes (tests/unit/fakes.py), wired by the production composition root: each
rule, each refusal in its order, each fault path. No server; the integration tests show what only real
MariaDB, Redis and SQS can."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest

from couponcore import metrics
from couponcore.domain.coupon import IssueMode, NewCoupon
from couponcore.domain.errors import DependencyUnavailableError, ErrorCode
from couponcore.domain.events import CouponChanged, CouponIssueCompleted, DomainEvent, SeatsReleased
from couponcore.domain.reservation import PendingReservation, ResendRecord, ReservationMessage
from couponcore.services import time_budget
from couponcore.services.async_issue import AsyncIssueService
from couponcore.services.coupons import CouponService, IssueStatus
from couponcore.services.persist import PersistService
from couponcore.services.ports import UnitOfWork
from couponcore.services.reconcile import PASS_BUDGET_S, ReconcileService
from couponcore.services.sync_issue import SyncIssueService
from tests.support.refusals import refusal
from tests.unit.fakes import FakeAdapters, fake_services

START = datetime(2026, 11, 1, 10, 0, 0)
END = datetime(2026, 11, 1, 12, 0, 0)
INSIDE = datetime(2026, 11, 1, 11, 0, 0)
AFTER = END + timedelta(hours=1)


class World:
    """The services of one function, built by the composition root on fakes, at a time the test sets."""

    def __init__(self) -> None:
        self.adapters = FakeAdapters()
        self.now = INSIDE
        self.now_ms = 0
        self.services = fake_services(self.adapters, clock=lambda: self.now, epoch_ms=lambda: self.now_ms)
        self.published: list[DomainEvent] = []
        for event_type in (CouponIssueCompleted, SeatsReleased, CouponChanged):
            self.services.bus.subscribe(event_type, self.published.append)
        self.db, self.seats, self.queue = self.adapters.db, self.adapters.seats, self.adapters.queue
        self.lock, self.pass_lock, self.metrics = self.adapters.lock, self.adapters.pass_lock, self.adapters.metrics
        self.catalog = self.adapters.catalog

    def unit_of_work(self) -> UnitOfWork:
        return self.services.unit_of_work()

    def coupon(self, total: int | None = 2, mode: IssueMode = IssueMode.ASYNC) -> int:
        coupon_id = self.services.coupons.create(NewCoupon("t", total, 1, 0, START, END, mode)).coupon.id
        self.published.clear()
        return coupon_id

    def hold(self, coupon_id: int, user_id: int, token: str, at_ms: int) -> None:
        """A seat held in Redis, as a reservation leaves it."""
        self.seats.reserve(PendingReservation(coupon_id, user_id, token, at_ms), None)

    def sync(self) -> SyncIssueService:
        return self.services.sync_issue

    def async_issue(self) -> AsyncIssueService:
        return self.services.async_issue

    def persist(self) -> PersistService:
        return self.services.persist

    def coupons(self) -> CouponService:
        return self.services.coupons

    def reconcile_at(self, now_ms: int) -> ReconcileService:
        self.now_ms = now_ms
        return self.services.reconcile


@pytest.fixture
def world() -> World:
    return World()


class TestSyncIssue:
    def test_issues_and_counts(self, world: World) -> None:
        coupon_id = world.coupon(mode=IssueMode.SYNC)
        world.sync().issue(coupon_id, 7)
        assert (coupon_id, 7) in world.db.issues and world.db.coupons[coupon_id].issued_quantity == 1

    def test_refusals_in_the_seeds_order(self, world: World) -> None:
        coupon_id = world.coupon(total=1, mode=IssueMode.SYNC)
        service = world.sync()
        assert refusal(lambda: service.issue(999, 1)) is ErrorCode.COUPON_NOT_EXIST
        assert refusal(lambda: service.issue(world.coupon(mode=IssueMode.ASYNC), 1)) is ErrorCode.WRONG_ISSUE_MODE
        service.issue(coupon_id, 1)
        assert refusal(lambda: service.issue(coupon_id, 1)) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY  # sold out first
        world.now = AFTER
        assert refusal(lambda: service.issue(coupon_id, 2)) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY  # and ended
        open_coupon = world.coupon(total=5, mode=IssueMode.SYNC)
        assert refusal(lambda: service.issue(open_coupon, 2)) is ErrorCode.INVALID_COUPON_ISSUE_DATE

    def test_a_duplicate_is_refused_after_quantity_and_window(self, world: World) -> None:
        coupon_id = world.coupon(total=5, mode=IssueMode.SYNC)
        world.sync().issue(coupon_id, 1)
        assert refusal(lambda: world.sync().issue(coupon_id, 1)) is ErrorCode.DUPLICATED_COUPON_ISSUE
        assert world.db.coupons[coupon_id].issued_quantity == 1

    def test_the_last_seat_announces_sold_out_after_commit(self, world: World) -> None:
        coupon_id = world.coupon(total=2, mode=IssueMode.SYNC)
        world.sync().issue(coupon_id, 1)
        assert world.published == []
        world.sync().issue(coupon_id, 2)
        assert world.published == [CouponIssueCompleted(coupon_id)]

    def test_mysql_down_is_dependency_unavailable(self, world: World) -> None:
        coupon_id = world.coupon(mode=IssueMode.SYNC)
        world.db.down = True
        with pytest.raises(DependencyUnavailableError):
            world.sync().issue(coupon_id, 1)


class TestReserveV2:
    def test_reserves_then_sends(self, world: World) -> None:
        coupon_id = world.coupon()
        world.async_issue().reserve_v2(coupon_id, 7)
        assert [(m.coupon_id, m.user_id) for m in world.queue.sent] == [(coupon_id, 7)]
        assert world.seats.holds_seat(coupon_id, 7)
        assert world.metrics.counts[metrics.RESERVATIONS_SENT.name] == 1

    def test_duplicate_then_sold_out_from_the_script(self, world: World) -> None:
        coupon_id = world.coupon(total=1)
        service = world.async_issue()
        service.reserve_v2(coupon_id, 1)
        assert refusal(lambda: service.reserve_v2(coupon_id, 1)) is ErrorCode.DUPLICATED_COUPON_ISSUE
        assert refusal(lambda: service.reserve_v2(coupon_id, 2)) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY
        assert world.catalog.flags[coupon_id] is True  # the next requests stop at the cache

    def test_the_sold_out_flag_refuses_without_touching_the_seats(self, world: World) -> None:
        coupon_id = world.coupon(total=1)
        world.catalog.mark_sold_out(coupon_id)
        calls = world.seats.calls
        assert refusal(lambda: world.async_issue().reserve_v2(coupon_id, 2)) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY
        assert world.seats.calls == calls

    def test_sold_out_and_ended_is_sold_out(self, world: World) -> None:
        coupon_id = world.coupon(total=1)
        world.async_issue().reserve_v2(coupon_id, 1)
        world.catalog.refresh(coupon_id)
        world.now = AFTER
        assert refusal(lambda: world.async_issue().reserve_v2(coupon_id, 2)) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY

    def test_sold_out_elsewhere_and_ended_is_sold_out_though_the_flag_says_available(self, world: World) -> None:
        coupon_id = world.coupon(total=1)
        world.async_issue().reserve_v2(coupon_id, 1)  # the flag is set only by a request the script refuses
        assert world.catalog.flags.get(coupon_id) is not True
        world.now = AFTER
        assert refusal(lambda: world.async_issue().reserve_v2(coupon_id, 2)) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY
        other = world.coupon(total=5)
        calls = world.seats.calls
        assert refusal(lambda: world.async_issue().reserve_v2(other, 2)) is ErrorCode.INVALID_COUPON_ISSUE_DATE
        assert world.seats.calls == calls + 1  # one count, no reservation

    @pytest.mark.parametrize("route", ["v1", "v1_async", "v2"])
    def test_past_the_fair_share_429_before_any_lock_or_seat(self, world: World, route: str) -> None:
        world.adapters.fair_share.per_second = 2
        mode = IssueMode.SYNC if route == "v1" else IssueMode.ASYNC
        coupon_id = world.coupon(total=100, mode=mode)
        issue = {
            "v1": world.sync().issue,
            "v1_async": world.async_issue().reserve_v1_async,
            "v2": world.async_issue().reserve_v2,
        }[route]
        issue(coupon_id, 1)
        assert refusal(lambda: issue(coupon_id, 1)) is ErrorCode.DUPLICATED_COUPON_ISSUE
        locks, transactions = world.lock.held, world.db.transactions
        assert refusal(lambda: issue(coupon_id, 1)) is ErrorCode.TOO_MANY_REQUESTS
        assert (world.lock.held, world.db.transactions) == (locks, transactions)
        issue(coupon_id, 2)  # another user's share is their own
        world.seats.next_second()
        assert refusal(lambda: issue(coupon_id, 1)) is ErrorCode.DUPLICATED_COUPON_ISSUE

    def test_v1_goes_on_without_a_fair_share_when_redis_is_down(self, world: World) -> None:
        world.adapters.fair_share.per_second = 1
        coupon_id = world.coupon(mode=IssueMode.SYNC)
        world.seats.down = True
        assert world.sync().issue(coupon_id, 1) is IssueStatus.ISSUED

    @pytest.mark.parametrize("now", [START, END, AFTER])
    def test_outside_the_window(self, world: World, now: datetime) -> None:
        coupon_id = world.coupon()
        world.now = now
        assert refusal(lambda: world.async_issue().reserve_v2(coupon_id, 1)) is ErrorCode.INVALID_COUPON_ISSUE_DATE
        assert world.seats.seats_taken(coupon_id) == 0

    def test_unknown_coupon_and_wrong_mode(self, world: World) -> None:
        sync_coupon = world.coupon(mode=IssueMode.SYNC)
        assert refusal(lambda: world.async_issue().reserve_v2(404, 1)) is ErrorCode.COUPON_NOT_EXIST
        assert refusal(lambda: world.async_issue().reserve_v2(sync_coupon, 1)) is ErrorCode.WRONG_ISSUE_MODE

    def test_a_failed_send_gives_the_seat_back(self, world: World) -> None:
        coupon_id = world.coupon(total=1)
        world.queue.down = True
        with pytest.raises(DependencyUnavailableError):
            world.async_issue().reserve_v2(coupon_id, 1)
        assert world.seats.seats_taken(coupon_id) == 0 and not world.seats.pending_entries[coupon_id]
        assert world.published == [SeatsReleased(coupon_id)]
        world.queue.down = False
        world.async_issue().reserve_v2(coupon_id, 2)  # the seat is free again
        assert [m.user_id for m in world.queue.sent] == [2]

    def test_a_send_that_may_have_arrived_keeps_the_seat_for_reconciliation(self, world: World) -> None:
        coupon_id = world.coupon(total=1)
        world.queue.lose_answer = True  # timed out: SQS may or may not hold it
        assert refusal(lambda: world.async_issue().reserve_v2(coupon_id, 1)) is ErrorCode.FAIL_COUPON_ISSUE_REQUEST
        assert world.seats.holds_seat(coupon_id, 1) and world.published == []  # not given back: not sold twice
        assert world.metrics.counts[metrics.RESERVATIONS_UNCONFIRMED.name] == 1
        assert world.reconcile_at(world.now_ms + 61_000).run().resent == 1  # sent again after the grace period

    @pytest.mark.parametrize("route", ["reserve_v2", "reserve_v1_async"])
    def test_after_redis_lost_the_seats_nothing_is_sold_until_they_are_recounted(
        self, world: World, route: str
    ) -> None:
        coupon_id = world.coupon(total=2)
        world.async_issue().reserve_v2(coupon_id, 1)
        world.persist().persist(world.queue.sent)
        world.queue.sent.clear()
        world.seats.lose_everything()
        reserve = getattr(world.async_issue(), route)
        assert refusal(lambda: reserve(coupon_id, 2)) is ErrorCode.FAIL_COUPON_ISSUE_REQUEST  # the loss is seen
        assert world.metrics.counts[metrics.SEATS_PAUSED_REQUESTS.name] == 1
        assert refusal(lambda: world.coupons().issue_status(coupon_id, 2)) is ErrorCode.FAIL_COUPON_ISSUE_REQUEST
        world.now_ms += 1_000  # every send begun before the loss is done, and the queue is empty
        assert refusal(lambda: reserve(coupon_id, 2)) is ErrorCode.FAIL_COUPON_ISSUE_REQUEST  # this one recounts
        reserve(coupon_id, 2)
        assert refusal(lambda: reserve(coupon_id, 3)) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY  # 1 issued + 2

    @pytest.mark.parametrize("route", ["reserve_v2", "reserve_v1_async"])
    def test_an_unreadable_signing_key_reserves_nothing(self, world: World, route: str) -> None:
        """The key is had before the seat: a reservation never waits on Secrets Manager."""
        coupon_id = world.coupon(total=1)
        world.queue.key_unreadable = True
        with pytest.raises(DependencyUnavailableError):
            getattr(world.async_issue(), route)(coupon_id, 1)
        assert world.seats.seats_taken(coupon_id) == 0 and world.queue.sent == []

    def test_redis_down_is_dependency_unavailable_with_nothing_sent(self, world: World) -> None:
        coupon_id = world.coupon()
        world.seats.down = True
        with pytest.raises(DependencyUnavailableError):
            world.async_issue().reserve_v2(coupon_id, 1)
        assert world.queue.sent == []

    def test_no_time_left_reserves_nothing(self, world: World) -> None:
        coupon_id = world.coupon()
        with time_budget.invocation(remaining_ms=10):
            assert refusal(lambda: world.async_issue().reserve_v2(coupon_id, 1)) is ErrorCode.FAIL_COUPON_ISSUE_REQUEST
        assert world.seats.seats_taken(coupon_id) == 0 and world.queue.sent == []


class TestReserveV1Async:
    def test_reserves_under_the_lock_and_sends(self, world: World) -> None:
        coupon_id = world.coupon()
        world.async_issue().reserve_v1_async(coupon_id, 3)
        assert world.lock.held == 1 and [m.user_id for m in world.queue.sent] == [3]

    def test_quantity_before_window_before_the_lock(self, world: World) -> None:
        coupon_id = world.coupon(total=1)
        world.async_issue().reserve_v1_async(coupon_id, 1)
        world.now = AFTER
        code = refusal(lambda: world.async_issue().reserve_v1_async(coupon_id, 2))
        assert code is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY and world.lock.held == 1

    def test_duplicate_under_the_lock(self, world: World) -> None:
        coupon_id = world.coupon(total=5)
        world.async_issue().reserve_v1_async(coupon_id, 1)
        assert refusal(lambda: world.async_issue().reserve_v1_async(coupon_id, 1)) is ErrorCode.DUPLICATED_COUPON_ISSUE

    def test_a_busy_lock_is_503_with_nothing_reserved(self, world: World) -> None:
        coupon_id = world.coupon()
        world.lock.busy = True
        assert (
            refusal(lambda: world.async_issue().reserve_v1_async(coupon_id, 1)) is ErrorCode.FAIL_COUPON_ISSUE_REQUEST
        )
        assert world.seats.seats_taken(coupon_id) == 0
        assert world.metrics.counts[metrics.LOCK_FAILURES.name] == 1


def message(coupon_id: int, user: int, at_s: int, token: str = "t") -> ReservationMessage:
    return ReservationMessage(coupon_id, user, f"{token}{user}", 1_800_000_000_000 + at_s * 1000)


class TestPersist:
    def reserve(self, world: World, coupon_id: int, *messages: ReservationMessage) -> list[ReservationMessage]:
        for m in messages:
            world.hold(coupon_id, m.user_id, m.token, m.reserved_at_ms)
        return list(messages)

    def test_first_come_first_served_up_to_the_total(self, world: World) -> None:
        coupon_id = world.coupon(total=2)
        batch = self.reserve(
            world, coupon_id, message(coupon_id, 3, 3), message(coupon_id, 1, 1), message(coupon_id, 2, 2)
        )
        report = world.persist().persist(batch)
        assert (report.inserted, report.rejected) == (2, 1)
        assert {u for (_, u) in world.db.issues} == {1, 2} and world.db.coupons[coupon_id].issued_quantity == 2
        assert (coupon_id, 3) in world.db.rejections  # final in MySQL
        seat = world.seats.reservation_state(coupon_id, 3)
        assert not seat.holds_seat and seat.rejected  # its seat given back, the refusal remembered
        assert not seat.counted  # Redis let more through than there are seats: it sells nothing until recounted
        assert CouponIssueCompleted(coupon_id) in world.published

    def test_a_redelivered_record_is_not_issued_twice(self, world: World) -> None:
        coupon_id = world.coupon(total=5)
        batch = self.reserve(world, coupon_id, message(coupon_id, 1, 1))
        world.persist().persist(batch)
        again = world.persist().persist(batch)
        assert (again.inserted, again.already_issued) == (0, 1)
        assert world.db.coupons[coupon_id].issued_quantity == 1 == len(world.db.issues)

    def test_a_failing_coupon_fails_alone(self, world: World) -> None:
        good, bad = world.coupon(total=5), world.coupon(total=5)
        batch = [*self.reserve(world, good, message(good, 1, 1)), message(bad, 2, 1)]
        world.db.failing_coupons.add(bad)
        report = world.persist().persist(batch)
        assert set(report.failed_coupons) == {bad} and report.inserted == 1

    def test_records_of_a_sync_coupon_are_refused(self, world: World) -> None:
        coupon_id = world.coupon(mode=IssueMode.SYNC)
        report = world.persist().persist([message(coupon_id, 1, 1)])
        assert report.rejected == 1 and not world.db.issues


class TestReconcile:
    def test_a_pass_already_running_makes_this_one_a_no_op(self, world: World) -> None:
        coupon_id = world.coupon()
        world.hold(coupon_id, 1, "tok", 0)
        with world.pass_lock.exclusive():
            report = world.reconcile_at(61_000).run()
        assert report.skipped and report.resent == 0 and world.queue.sent == []
        assert world.reconcile_at(61_000).run().resent == 1  # released: the next pass runs

    def test_a_pass_past_its_budget_leaves_the_rest_to_the_next(self, world: World) -> None:
        first, second = world.coupon(), world.coupon()
        world.hold(first, 1, "a", 0)
        world.hold(second, 1, "b", 0)
        service = world.reconcile_at(61_000)
        real_check = world.seats.resend_records

        def slow_check(coupon_id: int, user_ids: Sequence[int]) -> dict[int, ResendRecord]:
            world.now_ms += (PASS_BUDGET_S + 1) * 1000  # this coupon took longer than a whole pass may
            return real_check(coupon_id, user_ids)

        world.seats.resend_records = slow_check  # type: ignore[method-assign]
        assert service.run().resent == 1 and len(world.queue.sent) == 1
        world.seats.resend_records = real_check  # type: ignore[method-assign]
        assert world.reconcile_at(world.now_ms).run().resent == 1  # the next pass reaches the other coupon
        assert {m.token for m in world.queue.sent} == {"a", "b"}

    def test_resends_a_stale_reservation_then_backs_off(self, world: World) -> None:
        coupon_id = world.coupon()
        world.hold(coupon_id, 1, "tok", 0)
        assert world.reconcile_at(61_000).run().resent == 1
        assert world.reconcile_at(62_000).run().resent == 0  # the next resend waits longer
        assert world.reconcile_at(61_000 + 120_000).run().resent == 1
        assert [m.token for m in world.queue.sent] == ["tok", "tok"]

    def test_a_young_reservation_is_left_alone(self, world: World) -> None:
        coupon_id = world.coupon()
        world.hold(coupon_id, 1, "tok", 50_000)
        assert world.reconcile_at(60_000).run().resent == 0

    def test_confirms_persisted_and_pauses_a_coupon_whose_seats_redis_lost(self, world: World) -> None:
        coupon_id = world.coupon()
        world.hold(coupon_id, 1, "tok", 0)
        with world.unit_of_work() as uow:
            uow.persist_and_commit(coupon_id, [(1, INSIDE, None), (2, INSIDE, None)], [], INSIDE)
        report = world.reconcile_at(61_000).run()
        assert (report.confirmed, report.missing, report.resent) == (1, 1, 0)
        assert world.seats.uncounted([coupon_id]) == [coupon_id]  # user 2's seat was lost: nothing is sold
        assert refusal(lambda: world.async_issue().reserve_v2(coupon_id, 3)) is ErrorCode.FAIL_COUPON_ISSUE_REQUEST
        assert world.reconcile_at(61_300).run().recounted == []  # sends begun before the loss may still land
        world.queue.sent.append(message(coupon_id, 4, 1))  # a reservation on its way
        assert world.reconcile_at(70_000).run().recounted == []  # not while the queue holds a message
        world.queue.sent.clear()  # batch_persist took it (MySQL refused it: no row)
        assert world.reconcile_at(71_000).run().recounted == [coupon_id]
        assert world.seats.seat_holders(coupon_id) == {1, 2}  # MySQL's issues, plus nothing pending
        assert world.metrics.counts[metrics.SEATS_PAUSE.name + "#observations"] == 1

    def test_a_queue_that_never_empties_bounds_the_pause(self, world: World) -> None:
        coupon_id = world.coupon()
        world.seats.lose_everything()
        world.queue.sent.append(message(coupon_id + 1, 4, 1))  # another coupon's sale goes on
        assert world.reconcile_at(100_000).run().recounted == []
        bound_ms = int(world.services.recount.bound_s * 1000)
        assert world.reconcile_at(100_000 + bound_ms - 1).run().recounted == []
        assert world.reconcile_at(100_000 + bound_ms).run().recounted == [coupon_id]

    def test_one_coupons_failure_does_not_stop_the_others(self, world: World) -> None:
        first, second = world.coupon(), world.coupon()
        world.hold(second, 1, "tok", 0)
        world.queue.down = True
        report = world.reconcile_at(61_000).run()
        assert report.failed == [second] and report.coupons_checked == 1
        assert first not in report.failed

    def test_ended_coupons_with_nothing_pending_let_their_keys_expire(self, world: World) -> None:
        coupon_id = world.coupon()
        world.now = AFTER
        world.reconcile_at(0).run()
        assert coupon_id in world.seats.expiring


class TestCouponsAndStatus:
    def test_create_announces_the_coupon(self, world: World) -> None:
        view = world.coupons().create(NewCoupon("t", 3, 1, 0, START, END))
        assert view.coupon.total_quantity == 3 and view.reserved_quantity == 0
        assert world.published == [CouponChanged(view.coupon.id)]  # after commit: caches learn it

    def test_reserved_quantity_counts_redis_seats(self, world: World) -> None:
        coupon_id = world.coupon()
        world.hold(coupon_id, 1, "t", 0)
        assert world.coupons().get(coupon_id).reserved_quantity == 1
        assert refusal(lambda: world.coupons().get(404)) is ErrorCode.COUPON_NOT_EXIST

    def test_final_outcomes_and_reservations_are_answered_without_mysql(self, world: World) -> None:
        coupon_id = world.coupon(total=1)
        status = world.coupons().issue_status
        world.hold(coupon_id, 1, "t", 1_800_000_000_123)
        world.hold(coupon_id, 3, "u", 0)  # oversold in Redis: MySQL refuses it
        world.hold(coupon_id, 4, "v", 0)
        world.persist().persist([ReservationMessage(coupon_id, 1, "t", 1_800_000_000_123)])
        world.persist().persist([ReservationMessage(coupon_id, 3, "u", 0)])
        world.db.down = True
        first = status(coupon_id, 1)
        assert (first.status, first.date_issued) == (IssueStatus.ISSUED, datetime(2027, 1, 15, 8, 0, 0, 123000))
        assert status(coupon_id, 3).status is IssueStatus.REJECTED
        assert status(coupon_id, 4).status is IssueStatus.RESERVED

    def test_an_issue_read_from_mysql_once_is_answered_from_redis_after(self, world: World) -> None:
        coupon_id = world.coupon(mode=IssueMode.SYNC)
        world.sync().issue(coupon_id, 1)
        status = world.coupons().issue_status
        before = world.db.transactions
        first = status(coupon_id, 1)
        assert world.db.transactions == before + 1
        assert [status(coupon_id, 1) for _ in range(3)] == [first] * 3
        assert world.db.transactions == before + 1

    def test_status_issued_reserved_rejected_or_not_found(self, world: World) -> None:
        coupon_id = world.coupon()
        status = world.coupons().issue_status
        world.hold(coupon_id, 1, "t", 0)
        assert status(coupon_id, 1).status is IssueStatus.RESERVED
        world.persist().persist([ReservationMessage(coupon_id, 1, "t", 1_800_000_000_000)])
        assert status(coupon_id, 1).status is IssueStatus.ISSUED
        with world.unit_of_work() as uow:
            uow.persist_and_commit(coupon_id, [], [2], INSIDE)
        world.seats.down = True  # a refusal is final in MySQL: Redis is not needed to tell it
        assert status(coupon_id, 1).status is IssueStatus.ISSUED
        world.seats.down = False
        assert status(coupon_id, 2).status is IssueStatus.REJECTED
        assert refusal(lambda: status(coupon_id, 3)) is ErrorCode.ISSUE_NOT_FOUND
