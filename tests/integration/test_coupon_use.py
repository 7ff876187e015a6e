"""Using a coupon, through the real handlers on a real MariaDB and Redis: expiry fixed at issue on every path,
redemption idempotent per order and exactly-once under races, its cancel, the refusal order, and the wallet."""

from __future__ import annotations

import os
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from couponcore import bootstrap
from couponcore.adapters.repositories import wallet_query
from couponcore.bootstrap import services
from couponcore.domain.clock import utc_now
from couponcore.domain.issue_route import IssueRoute
from couponcore.services.coupon_use import CouponUseService
from localdev.events import sqs_event
from localdev.sqs_local import sqs_client
from tests.support.concurrency import outcome, run_at_once
from tests.support.database import issued_quantity
from tests.support.lambdas import (
    call,
    invoke,
    issue_async,
    issue_status,
    issue_v1,
    new_coupon_id,
    redeem,
    redemption_event,
    restore,
    wallet,
)
from tests.support.sqs import QueuePair

pytestmark = pytest.mark.usefixtures("clean_state")


def iso(moment: datetime) -> str:
    return moment.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z")


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value).astimezone(UTC).replace(tzinfo=None)


def issued_coupon(user_id: int = 7, **fields: object) -> int:
    """A SYNC coupon (minimum order 10,000) issued to ``user_id`` through V1."""
    coupon_id = new_coupon_id(**{"totalQuantity": 10, **fields})
    assert issue_v1(coupon_id, user_id).status == 200
    return coupon_id


def row(coupon_id: int, user_id: int) -> dict[str, Any]:
    with services().adapters.engine.connect() as connection:
        found = connection.execute(
            text("SELECT * FROM coupon_issues WHERE coupon_id = :c AND user_id = :u"), {"c": coupon_id, "u": user_id}
        )
        return dict(found.mappings().one())


def use_service_at(moment: datetime) -> CouponUseService:
    """The redemption service as the function builds it, judging at ``moment``."""
    graph = services()
    return CouponUseService(graph.unit_of_work, graph.adapters.seats, graph.metrics, clock=lambda: moment)


class TestExpiry:
    def test_v1_fixes_the_expiry_at_issue_the_earlier_of_days_and_the_last_day_of_use(self) -> None:
        use_end = utc_now() + timedelta(days=3)
        by_days = issued_coupon(expiresInDays=2, dateUseEnd=iso(use_end))
        by_end = issued_coupon(expiresInDays=30, dateUseEnd=iso(use_end))
        never = issued_coupon()
        stored = row(by_days, 7)
        assert stored["date_expire"] == stored["date_issued"] + timedelta(days=2)  # exact, to the microsecond
        assert row(by_end, 7)["date_expire"] == use_end
        assert row(never, 7)["date_expire"] is None
        status = issue_status(by_days, 7).body
        assert (status["usage"], parse(status["dateExpire"]), status["dateUsed"], status["orderId"]) == (
            "AVAILABLE",
            stored["date_expire"],
            None,
            None,
        )

    def test_batch_persist_fixes_it_from_the_reservation_and_a_reserved_coupon_is_not_settled(
        self, issue_queue: QueuePair
    ) -> None:
        coupon_id = new_coupon_id(totalQuantity=10, issueMode="ASYNC", expiresInDays=5)
        assert issue_async(IssueRoute.V2, coupon_id, 3).status == 202
        early = redeem(coupon_id, 3, "order-1")
        assert (early.status, early.code, early.headers.get("Retry-After")) == (409, "ISSUE_NOT_SETTLED", "1")
        sqs = sqs_client(issue_queue.endpoint)
        message = sqs.receive_message(QueueUrl=issue_queue.url, WaitTimeSeconds=2)["Messages"][0]
        assert invoke("batch_persist", sqs_event("arn:aws:sqs:us-east-1:000000000000:q", [message])) == {
            "batchItemFailures": []
        }
        stored = row(coupon_id, 3)
        assert stored["date_expire"] == stored["date_issued"] + timedelta(days=5)
        status = issue_status(coupon_id, 3).body  # answered from what batch_persist kept in Redis
        assert (status["status"], status["usage"], parse(status["dateExpire"])) == (
            "ISSUED",
            "AVAILABLE",
            stored["date_expire"],
        )
        assert redeem(coupon_id, 3, "order-1").status == 200

    def test_a_coupon_is_refused_at_the_exact_instant_it_expires(self) -> None:
        coupon_id = issued_coupon(expiresInDays=1)
        expire = row(coupon_id, 7)["date_expire"]
        assert isinstance(expire, datetime)
        just_before = expire - timedelta(microseconds=1)
        assert outcome(lambda: use_service_at(expire).redeem(coupon_id, 7, "late", 50_000), "REDEEMED") == (
            "COUPON_EXPIRED"
        )
        assert row(coupon_id, 7)["date_used"] is None  # the conditional write refused it too
        page = use_service_at(expire).wallet(7, None, None, 10)
        assert page.entries[0].held.usage(page.judged_at).value == "EXPIRED"
        answer = use_service_at(just_before).redeem(coupon_id, 7, "in-time", 50_000)
        assert answer.held.date_used == just_before

    def test_existing_rows_from_before_the_migration_are_valid_unused_and_never_expire(self) -> None:
        coupon_id = new_coupon_id(totalQuantity=10)
        with services().adapters.engine.begin() as connection:  # a row as the previous schema wrote it
            connection.execute(
                text(
                    "INSERT INTO coupon_issues (coupon_id, user_id, date_issued, date_created, date_updated) "
                    "VALUES (:c, 8, :now, :now, :now)"
                ),
                {"c": coupon_id, "now": utc_now()},
            )
        assert wallet(8).body["items"][0]["usage"] == "AVAILABLE"
        assert redeem(coupon_id, 8, "old-row").status == 200


class TestRedemption:
    def test_redeemed_then_seen_as_used_everywhere(self) -> None:
        coupon_id = issued_coupon()
        assert issue_status(coupon_id, 7).body["usage"] == "AVAILABLE"  # kept in Redis from here on
        quantity, kept_keys = issued_quantity(coupon_id), sorted(services().adapters.redis.keys("coupon:{*}:reserved"))
        response = redeem(coupon_id, 7, "order-A", 25_000)
        assert response.status == 200
        body = response.body
        assert (body["code"], body["couponId"], body["userId"], body["orderId"], body["discountAmount"]) == (
            "REDEEMED",
            coupon_id,
            7,
            "order-A",
            1000,
        )
        status = issue_status(coupon_id, 7).body  # not the unused facts Redis kept before
        assert (status["usage"], status["orderId"], status["dateUsed"]) == ("USED", "order-A", body["dateUsed"])
        item = wallet(7).body["items"][0]
        assert (item["usage"], item["orderId"], item["dateUsed"]) == ("USED", "order-A", body["dateUsed"])
        # The issuing side is untouched.
        assert issued_quantity(coupon_id) == quantity
        assert sorted(services().adapters.redis.keys("coupon:{*}:reserved")) == kept_keys

    def test_a_retried_redemption_gets_the_first_answer(self) -> None:
        coupon_id = issued_coupon()
        first = redeem(coupon_id, 7, "order-A", 25_000)
        retries = [redeem(coupon_id, 7, "order-A", 25_000) for _ in range(3)]
        assert all((again.status, again.body) == (first.status, first.body) for again in retries)
        assert row(coupon_id, 7)["date_used"] == parse(first.body["dateUsed"])

    def test_of_orders_racing_for_one_coupon_exactly_one_wins(self) -> None:
        coupon_id = issued_coupon()
        orders = [f"order-{n}" for n in range(24)] * 2  # each order also races its own retry

        def attempt(order_id: str) -> str:
            return outcome(lambda: services().coupon_use.redeem(coupon_id, 7, order_id, 50_000), f"WON {order_id}")

        results = Counter(run_at_once(orders, attempt, workers=16))
        winners = {result for result in results if result.startswith("WON")}
        assert len(winners) == 1, results
        assert results[next(iter(winners))] == 2  # the winner's retry got the same answer
        assert results["COUPON_ALREADY_USED"] == len(orders) - 2
        assert row(coupon_id, 7)["order_id"] == next(iter(winners)).removeprefix("WON ")

    def test_cancel_gives_it_back_then_another_order_may_use_it(self) -> None:
        coupon_id = issued_coupon()
        assert redeem(coupon_id, 7, "order-A").status == 200
        wrong = restore(coupon_id, 7, "order-B")
        assert (wrong.status, wrong.code) == (409, "REDEMPTION_NOT_FOUND")
        cancelled = restore(coupon_id, 7, "order-A")
        assert (cancelled.status, cancelled.body["code"], cancelled.body["dateUsed"]) == (200, "RESTORED", None)
        assert restore(coupon_id, 7, "order-A").body == cancelled.body  # a repeated cancel answers the same
        assert issue_status(coupon_id, 7).body["usage"] == "AVAILABLE"
        assert (redeem(coupon_id, 7, "order-B").status, redeem(coupon_id, 7, "order-A").code) == (
            200,
            "COUPON_ALREADY_USED",
        )
        assert restore(coupon_id, 7, "order-A").code == "REDEMPTION_NOT_FOUND"  # B holds it now
        assert issue_status(coupon_id, 7).body["orderId"] == "order-B"

    def test_refusals_come_in_the_contract_s_order(self) -> None:
        coupon_id = issued_coupon(expiresInDays=1)  # minimum order 10,000
        expire = row(coupon_id, 7)["date_expire"]
        assert isinstance(expire, datetime)

        def refusal(moment: datetime, order_id: str, amount: int) -> str:
            return outcome(lambda: use_service_at(moment).redeem(coupon_id, 7, order_id, amount), "REDEEMED")

        assert refusal(expire, "A", 1) == "COUPON_EXPIRED"  # expired wins over the amount
        assert refusal(expire - timedelta(hours=1), "A", 1) == "ORDER_AMOUNT_TOO_LOW"
        assert refusal(expire - timedelta(hours=1), "A", 10_000) == "REDEEMED"
        assert refusal(expire, "B", 1) == "COUPON_ALREADY_USED"  # used wins over expired and the amount
        assert refusal(expire, "A", 1) == "REDEEMED"  # the order using it is answered as before
        assert refusal(expire, "A", 1) == "REDEEMED"
        assert outcome(lambda: use_service_at(expire).redeem(coupon_id, 8, "A", 1), "REDEEMED") == "ISSUE_NOT_FOUND"

    @pytest.mark.parametrize(
        ("body", "status"),
        [
            ({"orderId": "", "orderAmount": 1}, 422),
            ({"orderId": "x" * 65, "orderAmount": 1}, 422),
            ({"orderId": "bad order", "orderAmount": 1}, 422),
            ({"orderId": "o-1", "orderAmount": -1}, 422),
            ({"orderId": "o-1", "orderAmount": 10**12 + 1}, 422),
            ({"orderId": "o-1", "orderAmount": 1.5}, 422),
            ({"orderId": "o-1", "orderAmount": "100"}, 422),
            ({"orderId": 5, "orderAmount": 100}, 422),
            ({"orderAmount": 100}, 422),
        ],
    )
    def test_bad_orders_are_refused_before_anything(self, body: dict[str, object], status: int) -> None:
        coupon_id = issued_coupon()
        response = call("wallet", redemption_event("PUT", coupon_id, 7, body=body))
        assert (response.status, response.code) == (status, "INVALID_REQUEST")
        assert row(coupon_id, 7)["date_used"] is None

    def test_unknown_coupon_user_and_bad_cancels(self) -> None:
        coupon_id = issued_coupon()
        assert (redeem(2**63 - 1, 7, "o").status, redeem(2**63 - 1, 7, "o").code) == (404, "ISSUE_NOT_FOUND")
        assert redeem(coupon_id, 8, "o").code == "ISSUE_NOT_FOUND"
        assert redeem(0, 7, "o").status == 422
        assert restore(coupon_id, 7, "bad%20order").status == 422
        assert restore(coupon_id, 7, "never-used").code == "REDEMPTION_NOT_FOUND"

    def test_redis_down_answers_503_and_nothing_is_used(self, monkeypatch: pytest.MonkeyPatch) -> None:
        coupon_id = issued_coupon()
        redis_port = os.environ["REDIS_PORT"]
        monkeypatch.setenv("REDIS_PORT", "1")
        bootstrap.reset()
        response = redeem(coupon_id, 7, "order-A")
        assert (response.status, response.code, response.headers.get("Retry-After")) == (
            503,
            "FAIL_COUPON_ISSUE_REQUEST",
            "1",
        )
        assert row(coupon_id, 7)["date_used"] is None
        monkeypatch.setenv("REDIS_PORT", redis_port)
        bootstrap.reset()
        assert redeem(coupon_id, 7, "order-A").status == 200

    def test_mysql_down_answers_503(self, monkeypatch: pytest.MonkeyPatch) -> None:
        coupon_id = issued_coupon()
        monkeypatch.setenv("DB_PORT", "1")
        bootstrap.reset()
        assert redeem(coupon_id, 7, "order-A").status == 503
        assert restore(coupon_id, 7, "order-A").status == 503
        assert wallet(7).status == 503


class TestWallet:
    def test_ten_thousand_coupons_paged_to_the_end_nothing_missed_or_repeated(self) -> None:
        user_id, count = 5, 10_000
        start = utc_now() - timedelta(days=1)
        with services().adapters.engine.begin() as connection:
            first = int(connection.execute(text("SELECT COALESCE(MAX(id), 0) FROM coupons")).scalar_one()) + 1
            coupons = [
                {"id": first + n, "title": f"c{n}", "start": start, "end": start + timedelta(days=9)}
                for n in range(count)
            ]
            connection.execute(
                text(
                    "INSERT INTO coupons (id, title, coupon_type, total_quantity, issued_quantity, discount_amount, "
                    "min_available_amount, date_issue_start, date_issue_end, issue_mode, date_created, date_updated) "
                    "VALUES (:id, :title, 'FIRST_COME_FIRST_SERVED', 1, 1, 100, 0, :start, :end, 'SYNC', "
                    ":start, :start)"
                ),
                coupons,
            )
            # Every ten share one instant: the cursor orders ties by row id.
            issues = [{"c": first + n, "at": start + timedelta(seconds=n // 10)} for n in range(count)]
            connection.execute(
                text(
                    "INSERT INTO coupon_issues (coupon_id, user_id, date_issued, date_created, date_updated) "
                    f"VALUES (:c, {user_id}, :at, :at, :at)"
                ),
                issues,
            )
        seen: list[int] = []
        cursor = None
        pages = 0
        while True:
            response = wallet(user_id, "limit=100" + (f"&cursor={cursor}" if cursor else ""))
            assert response.status == 200, response
            seen += [item["couponId"] for item in response.body["items"]]
            pages += 1
            cursor = response.body["nextCursor"]
            if cursor is None:
                break
        assert pages == 100
        assert len(seen) == len(set(seen)) == count
        assert seen == sorted(seen, reverse=True)  # newest first (ids grow with the date here)

    @pytest.mark.parametrize("before", [None, (datetime(2026, 12, 1), 9)], ids=["first page", "next page"])
    def test_each_page_is_one_range_read_of_the_wallet_index(self, before: tuple[datetime, int] | None) -> None:
        issued_coupon(user_id=5)
        issued_coupon(user_id=6)
        with services().adapters.engine.connect() as connection:
            query = wallet_query(5, before, 21).compile(connection, compile_kwargs={"literal_binds": True})
            plan = connection.execute(text(f"EXPLAIN {query}")).mappings()
            by_table = {step["table"]: step for step in plan}
        assert by_table["coupon_issues"]["key"] == "ix_coupon_issues_user_issued"
        assert "filesort" not in str(by_table["coupon_issues"]["Extra"]).lower()
        assert by_table["coupons"]["key"] == "PRIMARY"

    def test_filters_by_use_and_pages_within_a_bounded_read(self) -> None:
        used = issued_coupon(user_id=9)
        available = issued_coupon(user_id=9)
        assert redeem(used, 9, "o-1").status == 200
        assert [item["couponId"] for item in wallet(9, "usage=USED").body["items"]] == [used]
        assert [item["couponId"] for item in wallet(9, "usage=AVAILABLE").body["items"]] == [available]
        assert wallet(9, "usage=EXPIRED").body == {"items": [], "nextCursor": None}
        both = wallet(9, "limit=1")
        assert [item["couponId"] for item in both.body["items"]] == [available]
        rest = wallet(9, f"limit=1&cursor={both.body['nextCursor']}").body
        assert ([item["couponId"] for item in rest["items"]], rest["nextCursor"]) == ([used], None)

    @pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "usage=LOST", "cursor=abc", "cursor=%00"])
    def test_bad_queries_are_refused(self, query: str) -> None:
        response = wallet(9, query)
        assert (response.status, response.code) in ((400, "INVALID_REQUEST"), (422, "INVALID_REQUEST")), response
