"""A container's own cache levels, on a clock the test moves."""

from __future__ import annotations

from datetime import datetime

from couponcore.adapters.coupon_cache import ExpiringValue, LocalCache
from couponcore.domain.coupon import Coupon, CouponType, IssueMode
from couponcore.services.ports import CachedCoupon

ENTRY = CachedCoupon(
    Coupon(
        1,
        "t",
        CouponType.FIRST_COME_FIRST_SERVED,
        1,
        0,
        0,
        0,
        datetime(2026, 1, 1),
        datetime(2027, 1, 1),
        IssueMode.ASYNC,
    ),
    sold_out=False,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_local_entries_expire_at_their_ttl_and_the_size_is_bounded() -> None:
    clock = Clock()
    local: LocalCache[CachedCoupon] = LocalCache(ttl_s=10, max_entries=2, clock=clock)
    local.put(1, ENTRY)
    clock.now += 9.999
    assert local.get(1) is ENTRY
    clock.now += 0.001
    assert local.get(1) is None  # exactly at its TTL it is gone
    for key in (1, 2, 3):
        local.put(key, ENTRY)
    assert local.get(1) is None and local.get(3) is ENTRY  # the oldest was evicted
    local.drop(3)
    assert local.get(3) is None


def test_an_expiring_value_is_kept_for_its_ttl() -> None:
    clock = Clock()
    highest: ExpiringValue[int] = ExpiringValue(ttl_s=10, clock=clock)
    assert highest.get() is None
    highest.set(7)
    clock.now += 9.9
    assert highest.get() == 7
    clock.now += 0.1
    assert highest.get() is None
