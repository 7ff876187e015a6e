"""The seed's coupon rules, without any I/O."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from couponcore.domain.coupon import Coupon, CouponType, IssueMode, NewCoupon, first_come_cut
from couponcore.domain.errors import ErrorCode
from couponcore.domain.reservation import ReserveOutcome, reserve_outcome
from tests.support.refusals import outcome, refusal

START = datetime(2026, 11, 1, 10, 0, 0)
END = datetime(2026, 11, 1, 12, 0, 0)
INSIDE = datetime(2026, 11, 1, 11, 0, 0)
TICK = timedelta(microseconds=1)


def coupon(total: int | None = 10, issued: int = 0, mode: IssueMode = IssueMode.SYNC) -> Coupon:
    return Coupon(
        id=1,
        title="t",
        coupon_type=CouponType.FIRST_COME_FIRST_SERVED,
        total_quantity=total,
        issued_quantity=issued,
        discount_amount=1000,
        min_available_amount=10000,
        date_issue_start=START,
        date_issue_end=END,
        issue_mode=mode,
    )


class TestQuantity:
    def test_seats_left_while_issued_below_total(self) -> None:
        assert coupon(total=10, issued=9).has_quantity_left()

    def test_no_seat_left_at_total(self) -> None:
        assert not coupon(total=10, issued=10).has_quantity_left()

    def test_unlimited_coupon_never_runs_out(self) -> None:
        assert coupon(total=None, issued=10**9).has_quantity_left()

    def test_taken_overrides_the_persisted_count(self) -> None:
        # The async paths count seats in Redis, not in issued_quantity.
        assert not coupon(total=10, issued=0).has_quantity_left(taken=10)
        assert coupon(total=10, issued=10).has_quantity_left(taken=3)


class TestWindow:
    @pytest.mark.parametrize(
        ("now", "is_open"),
        [
            (START - TICK, False),
            (START, False),  # exactly at start: closed
            (START + TICK, True),
            (INSIDE, True),
            (END - TICK, True),
            (END, False),  # exactly at end: closed
            (END + TICK, False),
        ],
    )
    def test_open_strictly_between_start_and_end(self, now: datetime, is_open: bool) -> None:
        assert coupon().is_window_open(now) is is_open


class TestRefusalOrder:
    def test_open_with_seats_is_not_refused(self) -> None:
        assert coupon().refusal(INSIDE, sold_out=False) is None

    def test_sold_out_wins_over_ended(self) -> None:
        assert coupon().refusal(END + TICK, sold_out=True) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY

    def test_sold_out_wins_over_not_started(self) -> None:
        assert coupon().refusal(START - TICK, sold_out=True) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY

    @pytest.mark.parametrize("now", [START - TICK, START, END, END + TICK])
    def test_closed_window_with_seats(self, now: datetime) -> None:
        assert coupon().refusal(now, sold_out=False) is ErrorCode.INVALID_COUPON_ISSUE_DATE


class TestSeatsLeft:
    @pytest.mark.parametrize(
        ("total", "taken", "left"), [(10, 0, 10), (10, 9, 1), (10, 10, 0), (10, 12, 0), (None, 5, None)]
    )
    def test_seats_left(self, total: int | None, taken: int, left: int | None) -> None:
        assert coupon(total=total).seats_left(taken) == left


class TestFirstComeCut:
    AT = [INSIDE + timedelta(seconds=s) for s in range(10)]

    def test_earliest_first_as_far_as_the_seats_go(self) -> None:
        cut = first_come_cut([(3, self.AT[2]), (1, self.AT[0]), (2, self.AT[1])], set(), seats_left=2)
        assert cut.accepted == [(1, self.AT[0]), (2, self.AT[1])]
        assert cut.refused == [3]

    def test_already_issued_users_are_neither_accepted_nor_refused(self) -> None:
        cut = first_come_cut([(1, self.AT[0]), (2, self.AT[1])], {1}, seats_left=1)
        assert cut.accepted == [(2, self.AT[1])] and cut.refused == []

    def test_a_user_twice_in_a_batch_counts_once_at_the_earliest(self) -> None:
        cut = first_come_cut([(1, self.AT[3]), (1, self.AT[1]), (2, self.AT[2])], set(), seats_left=5)
        assert cut.accepted == [(1, self.AT[1]), (2, self.AT[2])]

    def test_unlimited_accepts_everyone(self) -> None:
        cut = first_come_cut([(user, self.AT[user]) for user in range(5)], set(), seats_left=None)
        assert len(cut.accepted) == 5 and cut.refused == []

    def test_no_seat_left_refuses_everyone(self) -> None:
        cut = first_come_cut([(1, self.AT[0]), (2, self.AT[1])], set(), seats_left=0)
        assert cut.accepted == [] and cut.refused == [1, 2]


class TestIssueRefusal:
    """The whole order in one place: mode, quantity, window, then the duplicate (every path asks this)."""

    @pytest.mark.parametrize(
        ("stored", "issued", "now", "duplicate", "expected"),
        [
            (IssueMode.SYNC, 0, INSIDE, False, None),
            (IssueMode.ASYNC, 10, END + TICK, True, ErrorCode.WRONG_ISSUE_MODE),  # the mode before anything
            (IssueMode.SYNC, 10, END + TICK, True, ErrorCode.INVALID_COUPON_ISSUE_QUANTITY),  # sold out first
            (IssueMode.SYNC, 0, END, True, ErrorCode.INVALID_COUPON_ISSUE_DATE),  # then the window
            (IssueMode.SYNC, 0, INSIDE, True, ErrorCode.DUPLICATED_COUPON_ISSUE),  # the duplicate last
        ],
    )
    def test_in_the_seeds_order(
        self, stored: IssueMode, issued: int, now: datetime, duplicate: bool, expected: ErrorCode | None
    ) -> None:
        rule = coupon(issued=issued, mode=stored)
        assert rule.issue_refusal(now, mode=IssueMode.SYNC, already_issued=duplicate) is expected

    def test_the_async_paths_count_their_own_seats(self) -> None:
        rule = coupon(total=1, issued=0, mode=IssueMode.ASYNC)
        assert rule.issue_refusal(INSIDE, mode=IssueMode.ASYNC, taken=1) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY
        assert refusal(lambda: rule.check_issuable(INSIDE, taken=1)) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY

    def test_unlimited_coupon_is_issuable_inside_the_window(self) -> None:
        assert outcome(lambda: coupon(total=None, issued=10**6).check_issuable(INSIDE)) is None


class TestReserveOutcome:
    """What the Lua script mirrors (tests/integration/test_redis_primitives.py checks that it does)."""

    def test_nothing_is_decided_from_a_state_not_known_complete(self) -> None:
        assert reserve_outcome(counted=False, holds_seat=True, taken=0, total=1) is ReserveOutcome.UNCOUNTED

    @pytest.mark.parametrize(
        ("holds_seat", "taken", "total", "expected"),
        [
            (False, 0, 1, ReserveOutcome.RESERVED),
            (False, 1, 1, ReserveOutcome.SOLD_OUT),
            (True, 1, 1, ReserveOutcome.DUPLICATE),  # a duplicate even when sold out
            (False, 10**6, None, ReserveOutcome.RESERVED),  # unlimited
        ],
    )
    def test_duplicate_then_quantity(
        self, holds_seat: bool, taken: int, total: int | None, expected: ReserveOutcome
    ) -> None:
        assert reserve_outcome(counted=True, holds_seat=holds_seat, taken=taken, total=total) is expected


class TestIssueMode:
    def test_same_mode_passes(self) -> None:
        assert outcome(lambda: coupon(mode=IssueMode.SYNC).check_issue_mode(IssueMode.SYNC)) is None

    @pytest.mark.parametrize(
        ("stored", "asked"), [(IssueMode.SYNC, IssueMode.ASYNC), (IssueMode.ASYNC, IssueMode.SYNC)]
    )
    def test_other_mode_is_refused(self, stored: IssueMode, asked: IssueMode) -> None:
        assert refusal(lambda: coupon(mode=stored).check_issue_mode(asked)) is ErrorCode.WRONG_ISSUE_MODE


class TestNewCoupon:
    VALID = NewCoupon(
        title="Flash",
        total_quantity=100,
        discount_amount=1000,
        min_available_amount=0,
        date_issue_start=START,
        date_issue_end=END,
    )

    def test_defaults_to_async(self) -> None:
        assert self.VALID.issue_mode is IssueMode.ASYNC

    def test_unlimited_is_allowed(self) -> None:
        assert replace(self.VALID, total_quantity=None).total_quantity is None

    @pytest.mark.parametrize(
        "change",
        [
            {"title": "   "},
            {"total_quantity": 0},
            {"total_quantity": -1},
            {"discount_amount": -1},
            {"min_available_amount": -5},
            {"date_issue_end": START},
            {"date_issue_start": END + TICK},
        ],
    )
    def test_invalid_coupons_are_refused(self, change: dict[str, object]) -> None:
        assert refusal(lambda: replace(self.VALID, **change)) is ErrorCode.INVALID_REQUEST  # type: ignore[arg-type]
