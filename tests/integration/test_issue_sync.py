"""V1 through the real handler and a real MariaDB: rules, codes, concurrency and faults."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from couponcore import bootstrap
from couponcore.adapters.mysql import create_admin_engine
from couponcore.config import Settings
from tests.support.concurrency import outcome, run_at_once
from tests.support.database import issue_rows, issued_quantity, issued_users
from tests.support.lambdas import issue_status, issue_v1, new_coupon_id

pytestmark = pytest.mark.usefixtures("clean_state")


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def run_concurrently(calls: list[tuple[int, int]], workers: int) -> Counter[str]:
    """V1 issues at once through the service every V1 request calls (HTTP concurrency: tests/e2e)."""

    def attempt(call: tuple[int, int]) -> str:
        return outcome(lambda: bootstrap.services().sync_issue.issue(*call), success="ISSUED")

    return Counter(run_at_once(calls, attempt, workers))


class TestOutcomes:
    def test_issue_then_status_is_issued(self) -> None:
        coupon_id = new_coupon_id(totalQuantity=10)
        response = issue_v1(coupon_id, 42)
        assert (response.status, response.body) == (200, {"isSuccess": True, "code": "ISSUED"})
        status = issue_status(coupon_id, 42)
        assert status.status == 200
        assert status.body["status"] == "ISSUED"
        assert status.body["dateIssued"].endswith("Z")
        assert (issued_quantity(coupon_id), issue_rows(coupon_id)) == (1, 1)

    def test_second_issue_to_the_same_user_is_a_duplicate(self) -> None:
        coupon_id = new_coupon_id(totalQuantity=10)
        assert issue_v1(coupon_id, 1).status == 200
        response = issue_v1(coupon_id, 1)
        assert (response.status, response.code) == (409, "DUPLICATED_COUPON_ISSUE")
        assert (issued_quantity(coupon_id), issue_rows(coupon_id)) == (1, 1)

    def test_sold_out(self) -> None:
        coupon_id = new_coupon_id(totalQuantity=1)
        assert issue_v1(coupon_id, 1).status == 200
        response = issue_v1(coupon_id, 2)
        assert (response.status, response.code) == (409, "INVALID_COUPON_ISSUE_QUANTITY")
        assert (issued_quantity(coupon_id), issue_rows(coupon_id)) == (1, 1)

    def test_sold_out_wins_over_duplicate(self) -> None:
        coupon_id = new_coupon_id(totalQuantity=1)
        assert issue_v1(coupon_id, 1).status == 200
        assert issue_v1(coupon_id, 1).code == "INVALID_COUPON_ISSUE_QUANTITY"

    @pytest.mark.parametrize(
        ("start", "end"),
        [(timedelta(hours=1), timedelta(hours=2)), (timedelta(hours=-2), timedelta(hours=-1))],
        ids=["not-started", "ended"],
    )
    def test_outside_the_window(self, start: timedelta, end: timedelta) -> None:
        now = datetime.now(UTC)
        coupon_id = new_coupon_id(dateIssueStart=iso(now + start), dateIssueEnd=iso(now + end))
        response = issue_v1(coupon_id, 1)
        assert (response.status, response.code) == (409, "INVALID_COUPON_ISSUE_DATE")
        assert issue_rows(coupon_id) == 0

    def test_unknown_coupon(self) -> None:
        response = issue_v1(987654321, 1)
        assert (response.status, response.code) == (404, "COUPON_NOT_EXIST")

    def test_async_coupon_is_refused_on_v1(self) -> None:
        coupon_id = new_coupon_id(issueMode="ASYNC")
        response = issue_v1(coupon_id, 1)
        assert (response.status, response.code) == (409, "WRONG_ISSUE_MODE")
        assert issue_rows(coupon_id) == 0

    def test_status_of_nothing_is_not_found(self) -> None:
        coupon_id = new_coupon_id()
        response = issue_status(coupon_id, 5)
        assert (response.status, response.code) == (404, "ISSUE_NOT_FOUND")


class TestConcurrency:
    def test_200_users_race_for_50_coupons(self) -> None:
        coupon_id = new_coupon_id(totalQuantity=50)
        codes = run_concurrently([(coupon_id, user) for user in range(1, 201)], workers=200)
        assert codes == {"ISSUED": 50, "INVALID_COUPON_ISSUE_QUANTITY": 150}
        assert issued_quantity(coupon_id) == issue_rows(coupon_id) == 50
        assert len(set(issued_users(coupon_id))) == 50

    def test_200_users_on_an_unlimited_coupon_all_get_one(self) -> None:
        coupon_id = new_coupon_id(totalQuantity=None)
        codes = run_concurrently([(coupon_id, user) for user in range(1, 201)], workers=200)
        assert codes == {"ISSUED": 200}
        assert issued_quantity(coupon_id) == issue_rows(coupon_id) == 200

    def test_one_user_racing_itself_gets_exactly_one(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("ISSUE_FAIR_SHARE_PER_S", "0")  # the row lock alone decides here
        bootstrap.reset()
        coupon_id = new_coupon_id(totalQuantity=10)
        codes = run_concurrently([(coupon_id, 7)] * 20, workers=20)
        assert codes == {"ISSUED": 1, "DUPLICATED_COUPON_ISSUE": 19}
        assert issued_quantity(coupon_id) == issue_rows(coupon_id) == 1

    def test_a_user_past_the_fair_share_is_refused_before_the_row_lock(self) -> None:
        coupon_id = new_coupon_id(totalQuantity=10)
        share = bootstrap.services().settings.issue_fair_share_per_s
        codes = run_concurrently([(coupon_id, 7)] * 20, workers=20)
        assert codes == {"ISSUED": 1, "DUPLICATED_COUPON_ISSUE": share - 1, "TOO_MANY_REQUESTS": 20 - share}
        assert issued_quantity(coupon_id) == issue_rows(coupon_id) == 1

    def test_users_repeating_themselves_never_oversell(self) -> None:
        coupon_id = new_coupon_id(totalQuantity=30)
        calls = [(coupon_id, user % 60 + 1) for user in range(240)]  # 60 users, 4 tries each
        codes = run_concurrently(calls, workers=120)
        assert codes["ISSUED"] == 30
        assert issued_quantity(coupon_id) == issue_rows(coupon_id) == 30
        assert len(set(issued_users(coupon_id))) == 30


class TestFaults:
    def test_lock_wait_timeout_answers_503_and_writes_nothing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        coupon_id = new_coupon_id(totalQuantity=10)
        monkeypatch.setenv("DB_LOCK_WAIT_TIMEOUT_S", "1")
        bootstrap.reset()
        blocker = create_admin_engine(Settings.from_env())
        with blocker.connect() as holder:
            holder.execute(text("SELECT id FROM coupons WHERE id = :id FOR UPDATE"), {"id": coupon_id})
            response = issue_v1(coupon_id, 1)
            holder.rollback()
        blocker.dispose()
        assert (response.status, response.code) == (503, "FAIL_COUPON_ISSUE_REQUEST")
        assert response.headers.get("Retry-After") == "1"
        assert (issued_quantity(coupon_id), issue_rows(coupon_id)) == (0, 0)
        # The row is free again: the same request now succeeds.
        assert issue_v1(coupon_id, 1).status == 200

    def test_database_down_answers_503_and_writes_nothing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        coupon_id = new_coupon_id(totalQuantity=10)
        monkeypatch.setenv("DB_PORT", "1")  # nothing listens there
        bootstrap.reset()
        response = issue_v1(coupon_id, 1)
        assert (response.status, response.code) == (503, "FAIL_COUPON_ISSUE_REQUEST")
        assert "Traceback" not in str(response.body)
        monkeypatch.undo()
        bootstrap.reset()
        assert (issued_quantity(coupon_id), issue_rows(coupon_id)) == (0, 0)
