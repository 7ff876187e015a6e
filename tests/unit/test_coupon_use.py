"""A coupon's use on fakes: expiry, the redemption rules in the contract's order, idempotency per order, the
cancel, the wallet's paging, and what the status route answers once a coupon is used."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from couponcore import metrics
from couponcore.domain.coupon import IssueMode, NewCoupon
from couponcore.domain.errors import CouponError, DependencyUnavailableError, ErrorCode
from couponcore.domain.redemption import HeldCoupon, Usage, expiry_of, usage_of
from couponcore.domain.reservation import PendingReservation
from couponcore.services.coupon_use import FILTERED_SCAN_ROWS, CouponUseService
from tests.support.refusals import refusal
from tests.unit.fakes import FakeAdapters, fake_services

START = datetime(2026, 11, 1, 10, 0, 0)
END = datetime(2026, 11, 1, 12, 0, 0)
INSIDE = datetime(2026, 11, 1, 11, 0, 0)
ISSUED = datetime(2026, 11, 1, 11, 0, 0)


class TestRules:
    def test_expiry_is_the_earlier_of_days_after_issue_and_the_last_day_of_use(self) -> None:
        end = ISSUED + timedelta(days=3)
        assert expiry_of(ISSUED, None, None) is None
        assert expiry_of(ISSUED, 2, None) == ISSUED + timedelta(days=2)
        assert expiry_of(ISSUED, None, end) == end
        assert expiry_of(ISSUED, 2, end) == ISSUED + timedelta(days=2)
        assert expiry_of(ISSUED, 5, end) == end

    def test_usage_used_wins_and_expiry_starts_at_its_instant(self) -> None:
        expire = ISSUED + timedelta(days=1)
        assert usage_of(None, expire, expire - timedelta(microseconds=1)) is Usage.AVAILABLE
        assert usage_of(None, expire, expire) is Usage.EXPIRED
        assert usage_of(ISSUED, expire, expire + timedelta(days=9)) is Usage.USED
        assert usage_of(None, None, datetime(9999, 1, 1)) is Usage.AVAILABLE

    def test_refusal_order_used_then_expired_then_amount(self) -> None:
        expire = ISSUED + timedelta(days=1)
        used = HeldCoupon(1, 2, ISSUED, expire, date_used=ISSUED, order_id="A")
        unused = HeldCoupon(1, 2, ISSUED, expire)
        assert used.redemption_refusal("B", 0, 100, expire) is ErrorCode.COUPON_ALREADY_USED
        assert used.redemption_refusal("A", 0, 100, expire) is None  # its own order, however late
        assert unused.redemption_refusal("B", 0, 100, expire) is ErrorCode.COUPON_EXPIRED
        assert unused.redemption_refusal("B", 99, 100, ISSUED) is ErrorCode.ORDER_AMOUNT_TOO_LOW
        assert unused.redemption_refusal("B", 100, 100, ISSUED) is None

    def test_only_the_order_using_it_or_the_last_to_give_it_back_may_cancel(self) -> None:
        used = HeldCoupon(1, 2, ISSUED, None, date_used=ISSUED, order_id="A", restored_order_id="Z")
        restored = HeldCoupon(1, 2, ISSUED, None, restored_order_id="A")
        assert used.restore_refusal("A") is None
        assert used.restore_refusal("Z") is ErrorCode.REDEMPTION_NOT_FOUND  # someone else holds it now
        assert restored.restore_refusal("A") is None
        assert restored.restore_refusal("B") is ErrorCode.REDEMPTION_NOT_FOUND


class World:
    def __init__(self) -> None:
        self.adapters = FakeAdapters()
        self.now = INSIDE
        self.services = fake_services(self.adapters, clock=lambda: self.now, epoch_ms=lambda: 0)

    @property
    def use(self) -> CouponUseService:
        return self.services.coupon_use

    def issued(self, user_id: int = 7, *, expires_in_days: int | None = None, min_amount: int = 10_000) -> int:
        coupon = NewCoupon("t", 10, 1000, min_amount, START, END, IssueMode.SYNC, expires_in_days=expires_in_days)
        coupon_id = self.services.coupons.create(coupon).coupon.id
        self.services.sync_issue.issue(coupon_id, user_id)
        return coupon_id


@pytest.fixture
def world() -> World:
    return World()


class TestRedemption:
    def test_redeem_is_idempotent_per_order_and_refuses_others(self, world: World) -> None:
        coupon_id = world.issued()
        first = world.use.redeem(coupon_id, 7, "A", 20_000)
        world.now += timedelta(minutes=5)
        again = world.use.redeem(coupon_id, 7, "A", 20_000)
        assert first == again and first.held.date_used == INSIDE and first.discount_amount == 1000
        assert refusal(lambda: world.use.redeem(coupon_id, 7, "B", 20_000)) is ErrorCode.COUPON_ALREADY_USED
        labelled = world.adapters.metrics.labelled
        assert labelled[metrics.REDEMPTIONS.name, frozenset({("action", "redeem"), ("outcome", "REDEEMED")})] == 1
        assert labelled[metrics.REDEMPTIONS.name, frozenset({("action", "redeem"), ("outcome", "REPEATED")})] == 1
        outcome = ("outcome", "COUPON_ALREADY_USED")
        assert labelled[metrics.REDEMPTIONS.name, frozenset({("action", "redeem"), outcome})] == 1

    def test_cancel_then_any_order_may_redeem_until_it_expires(self, world: World) -> None:
        coupon_id = world.issued(expires_in_days=1)
        world.use.redeem(coupon_id, 7, "A", 20_000)
        assert refusal(lambda: world.use.restore(coupon_id, 7, "B")) is ErrorCode.REDEMPTION_NOT_FOUND
        restored = world.use.restore(coupon_id, 7, "A")
        assert restored.held.date_used is None and world.use.restore(coupon_id, 7, "A") == restored
        assert world.use.redeem(coupon_id, 7, "B", 20_000).held.order_id == "B"
        world.use.restore(coupon_id, 7, "B")
        world.now = INSIDE + timedelta(days=1)
        assert refusal(lambda: world.use.redeem(coupon_id, 7, "C", 20_000)) is ErrorCode.COUPON_EXPIRED

    def test_too_low_an_amount_changes_nothing_and_needs_no_redis(self, world: World) -> None:
        coupon_id = world.issued()
        world.adapters.seats.down = True
        assert refusal(lambda: world.use.redeem(coupon_id, 7, "A", 9_999)) is ErrorCode.ORDER_AMOUNT_TOO_LOW
        assert world.adapters.db.issues[coupon_id, 7].date_used is None

    def test_a_reservation_on_its_way_is_not_settled_and_nothing_is_not_found(self, world: World) -> None:
        coupon = NewCoupon("t", 10, 1000, 0, START, END, IssueMode.ASYNC)
        coupon_id = world.services.coupons.create(coupon).coupon.id
        world.adapters.seats.reserve(PendingReservation(coupon_id, 7, "tok", 0), 10)
        assert refusal(lambda: world.use.redeem(coupon_id, 7, "A", 1)) is ErrorCode.ISSUE_NOT_SETTLED
        assert refusal(lambda: world.use.redeem(coupon_id, 8, "A", 1)) is ErrorCode.ISSUE_NOT_FOUND
        assert refusal(lambda: world.use.redeem(coupon_id + 99, 7, "A", 1)) is ErrorCode.ISSUE_NOT_FOUND

    def test_redis_down_refuses_before_mysql_changes(self, world: World) -> None:
        coupon_id = world.issued()
        world.adapters.seats.down = True
        with pytest.raises(DependencyUnavailableError):
            world.use.redeem(coupon_id, 7, "A", 20_000)
        assert world.adapters.db.issues[coupon_id, 7].date_used is None

    def test_bad_orders_are_refused_by_the_service_too(self, world: World) -> None:
        coupon_id = world.issued()
        for order_id, amount in (("", 1), ("a b", 1), ("x" * 65, 1), ("A", -1), ("A", 10**12 + 1)):
            with pytest.raises(CouponError) as refused:
                world.use.redeem(coupon_id, 7, order_id, amount)
            assert refused.value.code is ErrorCode.INVALID_REQUEST

    def test_the_status_route_stops_answering_unused_from_redis_once_used(self, world: World) -> None:
        coupon_id = world.issued()
        assert world.services.coupons.issue_status(coupon_id, 7).usage is Usage.AVAILABLE  # now kept in Redis
        world.use.redeem(coupon_id, 7, "A", 20_000)
        status = world.services.coupons.issue_status(coupon_id, 7)
        assert (status.usage, status.order_id, status.date_used) == (Usage.USED, "A", INSIDE)
        world.use.restore(coupon_id, 7, "A")
        status = world.services.coupons.issue_status(coupon_id, 7)
        assert (status.usage, status.order_id) == (Usage.AVAILABLE, None)


class TestWallet:
    def test_pages_newest_first_to_the_end(self, world: World) -> None:
        coupons = []
        for minute in range(7):
            world.now = INSIDE + timedelta(minutes=minute // 2)  # pairs share an instant
            coupons.append(world.issued(user_id=3))
        seen, after = [], None
        while True:
            page = world.use.wallet(3, None, after, 3)
            seen += [entry.held.coupon_id for entry in page.entries]
            if page.next_position is None:
                break
            after = page.next_position
        assert seen == coupons[::-1]

    def test_a_filtered_page_reads_a_bounded_number_of_rows(self, world: World) -> None:
        for _ in range(FILTERED_SCAN_ROWS + 5):
            world.issued(user_id=3)
        used = world.issued(user_id=3)
        world.use.redeem(used, 3, "A", 20_000)
        first = world.use.wallet(3, Usage.USED, None, 20)
        assert [entry.held.coupon_id for entry in first.entries] == [used]
        assert first.next_position is not None  # more rows to look at, none of them read yet
        rest = world.use.wallet(3, Usage.USED, first.next_position, 20)
        assert (rest.entries, rest.next_position) == ([], None)
