"""The V1 batch decides in SQL what the domain decides in Python: both must agree on every edge."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from couponcore.adapters.fair_share import RedisFairShare
from couponcore.bootstrap import services
from couponcore.domain.coupon import IssueMode, NewCoupon
from couponcore.domain.errors import CouponError, ErrorCode
from couponcore.services.sync_issue import SyncIssueService
from tests.support.database import issue_rows, issued_quantity

pytestmark = pytest.mark.usefixtures("clean_state")

START = datetime(2026, 11, 26, 9, 0, 0, 0)
END = datetime(2026, 11, 26, 10, 0, 0, 0)
TICK = timedelta(microseconds=1)


def make_coupon(total: int | None, mode: IssueMode = IssueMode.SYNC) -> int:
    new = NewCoupon("edge", total, 0, 0, START, END, mode)
    with services().unit_of_work() as uow:
        coupon_id = uow.coupons.add(new, START)
        uow.commit()
    return coupon_id


def issue_at(now: datetime, coupon_id: int, user_id: int) -> ErrorCode | None:
    graph = services()
    unlimited = RedisFairShare(graph.adapters.redis, per_second=0)  # users repeat themselves fast here
    service = SyncIssueService(graph.unit_of_work, unlimited, graph.metrics, clock=lambda: now)
    try:
        service.issue(coupon_id, user_id)
    except CouponError as refusal:
        return refusal.code
    return None


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (START - TICK, ErrorCode.INVALID_COUPON_ISSUE_DATE),
        (START, ErrorCode.INVALID_COUPON_ISSUE_DATE),
        (START + TICK, None),
        (END - TICK, None),
        (END, ErrorCode.INVALID_COUPON_ISSUE_DATE),
        (END + TICK, ErrorCode.INVALID_COUPON_ISSUE_DATE),
    ],
)
def test_window_edges(now: datetime, expected: ErrorCode | None) -> None:
    coupon_id = make_coupon(total=5)
    assert issue_at(now, coupon_id, 1) is expected
    assert issue_rows(coupon_id) == issued_quantity(coupon_id) == (1 if expected is None else 0)


def test_quantity_edge_then_duplicate_order() -> None:
    coupon_id = make_coupon(total=2)
    inside = START + timedelta(minutes=1)
    assert issue_at(inside, coupon_id, 1) is None
    assert issue_at(inside, coupon_id, 1) is ErrorCode.DUPLICATED_COUPON_ISSUE
    assert issue_at(inside, coupon_id, 2) is None
    assert issue_at(inside, coupon_id, 3) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY
    # Sold out is reported before duplicate, and before the window (the seed's order).
    assert issue_at(inside, coupon_id, 1) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY
    assert issue_at(END + TICK, coupon_id, 4) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY
    assert issue_rows(coupon_id) == issued_quantity(coupon_id) == 2


def test_async_coupon_is_never_written_by_v1() -> None:
    coupon_id = make_coupon(total=None, mode=IssueMode.ASYNC)
    assert issue_at(START + TICK, coupon_id, 1) is ErrorCode.WRONG_ISSUE_MODE
    assert issue_rows(coupon_id) == 0


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    total=st.one_of(st.none(), st.integers(min_value=1, max_value=3)),
    offsets=st.lists(st.integers(min_value=-3, max_value=3_600_000_003), min_size=1, max_size=6),
    users=st.lists(st.integers(min_value=1, max_value=4), min_size=6, max_size=6),
)
def test_sql_guard_matches_python_rules(total: int | None, offsets: list[int], users: list[int]) -> None:
    """Random instants around the edges (microseconds after START) and repeat users: SQL and Python agree."""
    coupon_id = make_coupon(total=total)
    holders: set[int] = set()
    for offset, user in zip(offsets, users, strict=False):
        now = START + timedelta(microseconds=offset)
        if total is not None and len(holders) >= total:
            expected: ErrorCode | None = ErrorCode.INVALID_COUPON_ISSUE_QUANTITY
        elif not START < now < END:
            expected = ErrorCode.INVALID_COUPON_ISSUE_DATE
        elif user in holders:
            expected = ErrorCode.DUPLICATED_COUPON_ISSUE
        else:
            expected = None
        assert issue_at(now, coupon_id, user) is expected
        if expected is None:
            holders.add(user)
    assert issue_rows(coupon_id) == issued_quantity(coupon_id) == len(holders)
