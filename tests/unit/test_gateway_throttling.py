"""The local gateway's throttling behaves as API Gateway's token buckets: burst at once, then the rate."""

from __future__ import annotations

from localdev.template import Throttle
from localdev.throttling import RouteThrottling, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_full_bucket_lets_the_burst_through_then_refills_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(Throttle(rate=4, burst=3), clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now += 0.125  # half a token
    assert not bucket.take()
    clock.now += 0.125
    assert bucket.take() and not bucket.take()
    clock.now += 60  # an idle minute fills it to the burst, no further
    assert sum(bucket.take() for _ in range(10)) == 3


def test_each_route_has_its_own_bucket_and_all_share_the_accounts() -> None:
    clock = Clock()
    throttling = RouteThrottling(
        {"GET /a": Throttle(rate=1, burst=2), "GET /b": Throttle(rate=1, burst=2)}, Throttle(rate=1, burst=3), clock
    )
    assert [throttling.admit("GET /a") for _ in range(3)] == [True, True, False]
    # /b has tokens of its own, but the account has one left.
    assert [throttling.admit("GET /b") for _ in range(2)] == [True, False]
    clock.now += 1
    assert throttling.admit("GET /b")
