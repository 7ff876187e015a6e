"""The two-level coupon cache: each level's hit and miss, expiry, refresh after commit, one loader."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from couponcore import bootstrap, metrics
from couponcore.adapters import redis_keys
from couponcore.adapters.coupon_cache import from_json
from couponcore.bootstrap import services
from couponcore.domain.errors import ErrorCode
from couponcore.domain.events import SeatsReleased
from couponcore.domain.issue_route import IssueRoute
from tests.support.lambdas import issue_async, issue_v1, new_coupon_id
from tests.support.metrics import EmittedMetrics
from tests.support.refusals import refusal
from tests.support.sqs import QueuePair

pytestmark = pytest.mark.usefixtures("clean_state")


class CouponReads:
    """Counts SELECTs on the coupons table, i.e. MySQL loads of a coupon."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM coupons" in statement:
            with self._lock:
                self.count += 1


@pytest.fixture
def coupon_reads() -> Iterator[CouponReads]:
    reads = CouponReads()
    engine = services().adapters.engine
    event.listen(engine, "before_cursor_execute", reads)
    yield reads
    event.remove(engine, "before_cursor_execute", reads)


def redis_commands() -> int:
    return int(services().adapters.redis.info("stats")["total_commands_processed"])


def test_creating_a_coupon_warms_redis() -> None:
    coupon_id = new_coupon_id(issueMode="ASYNC")
    raw = services().adapters.redis.get(redis_keys.coupon_view(coupon_id))
    assert raw is not None
    cached = from_json(str(raw))
    assert cached.coupon.id == coupon_id and not cached.sold_out


def test_local_hit_touches_neither_redis_nor_mysql(coupon_reads: CouponReads, emitted: EmittedMetrics) -> None:
    coupon_id = new_coupon_id(issueMode="ASYNC")
    catalog = services().adapters.catalog
    catalog.get(coupon_id)
    hits, reads, commands = emitted.value(metrics.CACHE_LOCAL_HITS), coupon_reads.count, 0
    commands = redis_commands()
    assert catalog.get(coupon_id) is not None
    assert redis_commands() - commands <= 1  # the INFO call itself
    assert coupon_reads.count == reads
    assert emitted.value(metrics.CACHE_LOCAL_HITS) == hits + 1


def test_redis_hit_fills_the_local_level_without_mysql(coupon_reads: CouponReads, emitted: EmittedMetrics) -> None:
    coupon_id = new_coupon_id(issueMode="ASYNC")
    catalog = services().adapters.catalog
    catalog.local.clear()
    hits = emitted.value(metrics.CACHE_REDIS_HITS)
    reads = coupon_reads.count
    assert catalog.get(coupon_id) is not None
    assert coupon_reads.count == reads
    assert emitted.value(metrics.CACHE_REDIS_HITS) == hits + 1
    assert catalog.local.get(coupon_id) is not None


def test_miss_on_both_levels_loads_mysql_once_and_fills_both(
    coupon_reads: CouponReads, emitted: EmittedMetrics
) -> None:
    coupon_id = new_coupon_id(issueMode="ASYNC")
    catalog = services().adapters.catalog
    catalog.local.clear()
    services().adapters.redis.delete(redis_keys.coupon_view(coupon_id))
    misses = (
        emitted.value(metrics.CACHE_LOOKUPS)
        - emitted.value(metrics.CACHE_LOCAL_HITS)
        - emitted.value(metrics.CACHE_REDIS_HITS)
    )
    reads = coupon_reads.count
    assert catalog.get(coupon_id) is not None
    assert coupon_reads.count == reads + 1
    missed_both = (
        emitted.value(metrics.CACHE_LOOKUPS)
        - emitted.value(metrics.CACHE_LOCAL_HITS)
        - emitted.value(metrics.CACHE_REDIS_HITS)
    )
    assert missed_both == misses + 1
    assert services().adapters.redis.get(redis_keys.coupon_view(coupon_id)) is not None


def test_unknown_coupon_is_none() -> None:
    assert services().adapters.catalog.get(10**12) is None


def test_a_burst_for_unknown_ids_reaches_mysql_once_in_all(issue_queue: QueuePair, coupon_reads: CouponReads) -> None:
    unknown = [10**12 + n for n in range(5)]
    reads = coupon_reads.count
    for _ in range(20):  # 100 requests for 5 ids that do not exist, with Redis empty
        for coupon_id in unknown:
            assert issue_async(IssueRoute.V2, coupon_id, 1).code == "COUPON_NOT_EXIST"
    assert coupon_reads.count - reads == 1  # the highest coupon id, then Redis holds it for every container
    # Another container (a fresh catalog) learns it from Redis, without MySQL.
    services().adapters.catalog.local.clear()
    services().adapters.catalog.missing.clear()
    assert issue_async(IssueRoute.V2, unknown[0], 1).code == "COUPON_NOT_EXIST"
    assert coupon_reads.count - reads == 1


def test_a_coupon_created_after_its_id_was_asked_for_is_found(coupon_reads: CouponReads) -> None:
    next_id = new_coupon_id(issueMode="ASYNC") + 1
    assert services().adapters.catalog.get(next_id) is None  # remembered as missing
    assert new_coupon_id(issueMode="ASYNC") == next_id  # the creation's warm start overwrites the entry
    found = services().adapters.catalog.get(next_id)
    assert found is not None and found.coupon.id == next_id


def test_one_loader_per_coupon_under_a_burst_of_misses(coupon_reads: CouponReads) -> None:
    coupon_id = new_coupon_id(issueMode="ASYNC")
    catalog = services().adapters.catalog
    catalog.local.clear()
    services().adapters.redis.delete(redis_keys.coupon_view(coupon_id))
    reads = coupon_reads.count
    with ThreadPoolExecutor(max_workers=50) as pool:
        found = list(pool.map(lambda _: catalog.get(coupon_id), range(50)))
    assert all(f is not None and f.coupon.id == coupon_id for f in found)
    assert coupon_reads.count - reads == 1


def test_sold_out_is_then_refused_from_the_cache(issue_queue: QueuePair, coupon_reads: CouponReads) -> None:
    coupon_id = new_coupon_id(totalQuantity=1, issueMode="ASYNC")
    assert issue_async(IssueRoute.V2, coupon_id, 1).status == 202
    assert issue_async(IssueRoute.V2, coupon_id, 2).code == "INVALID_COUPON_ISSUE_QUANTITY"  # the script says sold out
    commands, reads = redis_commands(), coupon_reads.count
    refused = issue_async(IssueRoute.V2, coupon_id, 3)
    assert (refused.status, refused.code) == (409, "INVALID_COUPON_ISSUE_QUANTITY")
    assert redis_commands() - commands <= 1  # only the INFO call: the flag refused it
    assert coupon_reads.count == reads


def test_v1_sell_out_refreshes_the_redis_entry() -> None:
    coupon_id = new_coupon_id(totalQuantity=2, issueMode="SYNC")
    for user in (1, 2):
        assert issue_v1(coupon_id, user).status == 200
    cached = from_json(str(services().adapters.redis.get(redis_keys.coupon_view(coupon_id))))
    assert cached.sold_out and cached.coupon.issued_quantity == 2


def test_a_failed_refresh_never_fails_the_issue(monkeypatch: pytest.MonkeyPatch, emitted: EmittedMetrics) -> None:
    coupon_id = new_coupon_id(totalQuantity=1, issueMode="SYNC")
    monkeypatch.setenv("REDIS_PORT", "1")  # the refresh after the selling commit cannot reach Redis
    bootstrap.reset()
    failures = emitted.value(metrics.CACHE_REFRESH_FAILURES)
    response = issue_v1(coupon_id, 1)
    assert (response.status, response.code) == (200, "ISSUED")
    assert emitted.value(metrics.CACHE_REFRESH_FAILURES) == failures + 1


def test_a_seat_given_back_clears_the_sold_out_flag_at_once(issue_queue: QueuePair) -> None:
    coupon_id = new_coupon_id(totalQuantity=1, issueMode="ASYNC")
    assert issue_async(IssueRoute.V2, coupon_id, 1).status == 202
    assert issue_async(IssueRoute.V2, coupon_id, 2).code == "INVALID_COUPON_ISSUE_QUANTITY"  # the flag is set
    view = services().adapters.redis.get(redis_keys.coupon_view(coupon_id))
    assert view is not None and from_json(str(view)).sold_out
    seat = services().adapters.ledger.pending(coupon_id)[0]
    assert services().adapters.seats.release(seat)  # e.g. its send failed, and the service announces it:
    services().bus.publish_all([SeatsReleased(coupon_id)])
    assert services().adapters.redis.get(redis_keys.coupon_view(coupon_id)) is None  # forgotten, no MySQL needed
    services().adapters.catalog.local.clear()  # another container, whose memory has expired
    assert issue_async(IssueRoute.V2, coupon_id, 2).status == 202


def test_a_burst_of_made_up_coupon_ids_never_reaches_mysql(coupon_reads: CouponReads) -> None:
    highest = new_coupon_id(issueMode="ASYNC")
    before = coupon_reads.count
    for made_up in range(highest + 1, highest + 201):
        assert services().adapters.catalog.get(made_up) is None
    assert coupon_reads.count == before  # the highest id (raised when the coupon was created) answered them


def test_a_coupon_created_a_moment_ago_is_found_by_a_container_that_knew_an_older_highest_id() -> None:
    first = new_coupon_id(issueMode="ASYNC")
    other = bootstrap.build(services().settings)  # another container, with its own local copies
    try:
        assert other.adapters.catalog.get(first + 1000) is None  # its copy of the highest id is now `first`
        created = new_coupon_id(issueMode="ASYNC")
        found = other.adapters.catalog.get(created)
        assert found is not None and found.coupon.id == created
    finally:
        other.close()


def test_with_the_highest_id_lost_from_redis_one_mysql_read_restores_it(coupon_reads: CouponReads) -> None:
    highest = new_coupon_id(issueMode="ASYNC")
    services().adapters.redis.delete(redis_keys.highest_coupon_id())
    fresh = bootstrap.build(services().settings)
    try:
        before = coupon_reads.count
        for made_up in range(highest + 1, highest + 51):
            assert fresh.adapters.catalog.get(made_up) is None
        # One MAX(id) read on this container's engine (not counted by coupon_reads, which watches the other).
        assert coupon_reads.count == before
        assert int(services().adapters.redis.get(redis_keys.highest_coupon_id())) == highest  # type: ignore[arg-type]
    finally:
        fresh.close()


def test_an_ended_coupon_is_refused_from_the_cache(coupon_reads: CouponReads) -> None:
    coupon_id = new_coupon_id(
        issueMode="ASYNC", dateIssueStart="2020-01-01T00:00:00Z", dateIssueEnd="2020-01-02T00:00:00Z"
    )
    before, commands = coupon_reads.count, redis_commands()
    for user in range(1, 101):
        assert issue_async(IssueRoute.V2, coupon_id, user).code == "INVALID_COUPON_ISSUE_DATE"
    assert coupon_reads.count == before
    assert redis_commands() - commands < 10  # the first lookup warms this container; the rest cost nothing


def test_sold_out_in_one_container_then_ended_is_sold_out_in_another(issue_queue: QueuePair) -> None:
    """The contract's order (quantity before the window) on every path, even where the cached flag has not
    heard of the sell-out: the last seat goes in one container, the window ends, another container asks."""
    end = datetime.now(UTC) + timedelta(seconds=2)
    coupon_id = new_coupon_id(issueMode="ASYNC", totalQuantity=1, dateIssueEnd=end.isoformat())
    late = bootstrap.build(services().settings)  # another container, which read the coupon with its seat left
    try:
        cached = late.adapters.catalog.get(coupon_id)
        assert cached is not None and not cached.sold_out
        assert issue_async(IssueRoute.V2, coupon_id, 1).code == "RESERVED"
        time.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()) + 0.1)
        service = late.async_issue
        assert refusal(lambda: service.reserve_v2(coupon_id, 2)) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY
        assert refusal(lambda: service.reserve_v1_async(coupon_id, 2)) is ErrorCode.INVALID_COUPON_ISSUE_QUANTITY
        with_seats = new_coupon_id(issueMode="ASYNC", totalQuantity=5, dateIssueEnd=end.isoformat())
        assert refusal(lambda: late.async_issue.reserve_v2(with_seats, 2)) is ErrorCode.INVALID_COUPON_ISSUE_DATE
    finally:
        late.close()
