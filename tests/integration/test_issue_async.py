"""The async paths: handlers and services in this process -> Redis -> a real SQS API -> batch_persist on the
local Lambda runtime -> MySQL."""

from __future__ import annotations

import os
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from couponcore import bootstrap
from couponcore.adapters import redis_keys
from couponcore.bootstrap import services
from couponcore.domain.issue_route import IssueRoute
from couponcore.domain.reservation import PendingReservation, ResendRecord, ReservationMessage
from couponcore.services.coupons import IssueStatus
from localdev.account import LocalAccount
from localdev.events import sqs_event
from localdev.sqs_local import Poller, sqs_client
from tests.support.concurrency import outcome, run_at_once
from tests.support.database import issue_rows, issued_quantity, issued_users
from tests.support.lambdas import invoke, issue_async, issue_status, new_coupon_id, one_at_a_time
from tests.support.network import free_port
from tests.support.sqs import QueuePair, wait_until


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


CLIENT_RETRIES = 5
# A request answered 503, then on its retry DUPLICATED, whose user the status route says holds a seat: its
# first attempt kept the seat (a send that may have arrived), or another request of the same user won it.
HELD_AFTER_503 = "HELD_AFTER_503"


def fire(calls: list[tuple[IssueRoute, int, int]], workers: int = 64) -> list[tuple[int, str]]:
    """Many reservations at once through the service the async routes call; returns (user, final outcome) pairs.
    (HTTP concurrency: tests/e2e.)"""

    def attempt(call: tuple[IssueRoute, int, int]) -> str:
        route, coupon_id, user = call
        service = services().async_issue
        reserve = service.reserve_v2 if route == IssueRoute.V2 else service.reserve_v1_async
        failed_before = False
        for _ in range(CLIENT_RETRIES):
            answer = outcome(lambda: reserve(coupon_id, user), success="RESERVED")
            if answer != "FAIL_COUPON_ISSUE_REQUEST":
                break
            # 503 + Retry-After: a client tries again. V1-async answers it when the coupon lock is not had in
            # time, which 64 threads of one process on a slow machine can cause; a send that timed out does too.
            failed_before = True
            time.sleep(0.1)
        if answer == "DUPLICATED_COUPON_ISSUE" and failed_before:
            held = services().coupons.issue_status(coupon_id, user).status in (IssueStatus.RESERVED, IssueStatus.ISSUED)
            return HELD_AFTER_503 if held else answer
        return answer

    return list(zip((c[2] for c in calls), run_at_once(calls, attempt, workers), strict=True))


def flash_sale_calls(
    route: IssueRoute | None, coupon_id: int, users: int, requests: int
) -> list[tuple[IssueRoute, int, int]]:
    """`requests` calls from `users` distinct users, some of them repeating; route None mixes v1 and v2."""
    rng = random.Random(42)
    user_ids = list(range(1, users + 1)) + [rng.randint(1, users) for _ in range(requests - users)]
    rng.shuffle(user_ids)
    return [(route or rng.choice([IssueRoute.V1_ASYNC, IssueRoute.V2]), coupon_id, user) for user in user_ids]


def assert_everything_persisted(coupon_id: int, winners: set[int], total: int) -> None:
    wait_until(lambda: issue_rows(coupon_id) >= len(winners), timeout_s=60, what="reservations persisted")
    assert issue_rows(coupon_id) == issued_quantity(coupon_id) == len(winners) == total
    assert set(issued_users(coupon_id)) == winners
    pending = services().adapters.ledger.pending(coupon_id)
    wait_until(lambda: not services().adapters.ledger.pending(coupon_id), timeout_s=10, what="pending cleared")
    assert all(issue_status(coupon_id, user).body["status"] == "ISSUED" for user in list(winners)[:50]), pending


@pytest.mark.usefixtures("poller")
class TestFlashSale:
    @pytest.mark.parametrize("route", [IssueRoute.V2, IssueRoute.V1_ASYNC, None], ids=["v2", "v1-async", "mixed"])
    def test_2000_requests_1500_users_1000_coupons(self, route: IssueRoute | None) -> None:
        coupon_id = new_coupon_id(totalQuantity=1000, issueMode="ASYNC")
        results = fire(flash_sale_calls(route, coupon_id, users=1500, requests=2000))
        codes = Counter(code for _, code in results)
        assert codes.total() == 2000
        assert set(codes) <= {"RESERVED", HELD_AFTER_503, "DUPLICATED_COUPON_ISSUE", "INVALID_COUPON_ISSUE_QUANTITY"}
        answered_202 = [user for user, code in results if code == "RESERVED"]
        assert len(answered_202) == len(set(answered_202)), codes  # nobody answered 202 twice
        winners = {user for user, code in results if code in ("RESERVED", HELD_AFTER_503)}
        assert len(winners) == 1000, codes
        assert_everything_persisted(coupon_id, winners, total=1000)

    def test_unlimited_async_coupon(self) -> None:
        coupon_id = new_coupon_id(totalQuantity=None, issueMode="ASYNC")
        results = fire([(IssueRoute.V2, coupon_id, user) for user in range(1, 301)])
        assert all(code in ("RESERVED", HELD_AFTER_503) for _, code in results)
        assert_everything_persisted(coupon_id, set(range(1, 301)), total=300)


class TestRulesAndStatus:
    @pytest.fixture(autouse=True)
    def _queue(self, issue_queue: QueuePair) -> None:
        self.queue = issue_queue

    @pytest.mark.parametrize("route", [IssueRoute.V1_ASYNC, IssueRoute.V2])
    def test_reserved_then_duplicate_and_status_reserved(self, route: IssueRoute) -> None:
        coupon_id = new_coupon_id(totalQuantity=5, issueMode="ASYNC")
        first = issue_async(route, coupon_id, 9)
        assert (first.status, first.body) == (202, {"isSuccess": True, "code": "RESERVED"})
        again = issue_async(route, coupon_id, 9)
        assert (again.status, again.code) == (409, "DUPLICATED_COUPON_ISSUE")
        status = issue_status(coupon_id, 9)
        assert (status.status, status.body["status"], status.body["dateIssued"]) == (200, "RESERVED", None)
        assert self.queue.depth() == 1  # one message, no poller running

    @pytest.mark.parametrize("route", [IssueRoute.V1_ASYNC, IssueRoute.V2])
    def test_sold_out(self, route: IssueRoute) -> None:
        coupon_id = new_coupon_id(totalQuantity=1, issueMode="ASYNC")
        assert issue_async(route, coupon_id, 1).status == 202
        response = issue_async(route, coupon_id, 2)
        assert (response.status, response.code) == (409, "INVALID_COUPON_ISSUE_QUANTITY")

    @pytest.mark.parametrize("route", [IssueRoute.V1_ASYNC, IssueRoute.V2])
    def test_window_wins_over_duplicate(self, route: IssueRoute) -> None:
        now = datetime.now(UTC)
        coupon_id = new_coupon_id(
            issueMode="ASYNC", dateIssueStart=iso(now + timedelta(hours=1)), dateIssueEnd=iso(now + timedelta(hours=2))
        )
        services().adapters.seats.reserve(
            PendingReservation(coupon_id, 3, "earlier", 1), None
        )  # the user already holds a seat
        response = issue_async(route, coupon_id, 3)
        assert (response.status, response.code) == (409, "INVALID_COUPON_ISSUE_DATE")

    @pytest.mark.parametrize("route", [IssueRoute.V1_ASYNC, IssueRoute.V2])
    def test_sync_coupon_is_refused(self, route: IssueRoute) -> None:
        coupon_id = new_coupon_id(issueMode="SYNC")
        response = issue_async(route, coupon_id, 1)
        assert (response.status, response.code) == (409, "WRONG_ISSUE_MODE")

    def test_unknown_coupon(self) -> None:
        response = issue_async(IssueRoute.V2, 10**15, 1)
        assert (response.status, response.code) == (404, "COUPON_NOT_EXIST")

    def test_retry_with_idempotency_key_gets_the_first_answer(self) -> None:
        coupon_id = new_coupon_id(totalQuantity=5, issueMode="ASYNC")
        first = issue_async(IssueRoute.V2, coupon_id, 7, idempotency_key="retry-7")
        retry = issue_async(IssueRoute.V2, coupon_id, 7, idempotency_key="retry-7")
        assert (first.status, retry.status) == (202, 202)
        assert retry.body == first.body
        assert self.queue.depth() == 1  # the retry reserved nothing and sent nothing
        without_key = issue_async(IssueRoute.V2, coupon_id, 7)
        assert (without_key.status, without_key.code) == (409, "DUPLICATED_COUPON_ISSUE")
        assert issue_status(coupon_id, 7).body["status"] == "RESERVED"

    def test_a_key_reused_for_another_request_is_refused_not_taken_for_new(self) -> None:
        coupon_id, other_coupon = (new_coupon_id(totalQuantity=5, issueMode="ASYNC") for _ in range(2))
        assert issue_async(IssueRoute.V2, coupon_id, 7, idempotency_key="k-7").status == 202
        for route, coupon in ((IssueRoute.V2, other_coupon), (IssueRoute.V1_ASYNC, coupon_id)):
            reused = issue_async(route, coupon, 7, idempotency_key="k-7")
            assert (reused.status, reused.code) == (422, "INVALID_REQUEST"), reused
        assert self.queue.depth() == 1  # only the first request reserved and sent
        # Keys are per user: another user's identical key is that user's own request.
        assert issue_async(IssueRoute.V2, coupon_id, 8, idempotency_key="k-7").status == 202

    def test_idempotency_key_that_is_too_long(self) -> None:
        coupon_id = new_coupon_id(issueMode="ASYNC")
        response = issue_async(IssueRoute.V2, coupon_id, 7, idempotency_key="k" * 129)
        assert response.code == "INVALID_REQUEST"


class TestFaults:
    def test_sqs_down_at_send_releases_the_seat(self, issue_queue: QueuePair, monkeypatch: pytest.MonkeyPatch) -> None:
        coupon_id = new_coupon_id(totalQuantity=1, issueMode="ASYNC")
        services().adapters.catalog.get(coupon_id)  # warm, as any running container would be
        monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")  # nothing listens there
        bootstrap.reset()
        response = issue_async(IssueRoute.V2, coupon_id, 1)
        assert (response.status, response.code) == (503, "FAIL_COUPON_ISSUE_REQUEST")
        assert response.headers.get("Retry-After") == "1"
        monkeypatch.undo()
        monkeypatch.setenv("ISSUE_QUEUE_URL", issue_queue.url)
        bootstrap.reset()
        assert services().adapters.seats.seats_taken(coupon_id) == 0
        assert issue_status(coupon_id, 1).code == "ISSUE_NOT_FOUND"
        # The seat is really free: the same user, or the next one, gets it.
        assert issue_async(IssueRoute.V2, coupon_id, 2).status == 202

    def test_redis_down_answers_503_and_changes_nothing(
        self, issue_queue: QueuePair, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        coupon_id = new_coupon_id(totalQuantity=3, issueMode="ASYNC")
        redis_port = os.environ["REDIS_PORT"]
        monkeypatch.setenv("REDIS_PORT", "1")
        bootstrap.reset()
        for route in (IssueRoute.V1_ASYNC, IssueRoute.V2):
            response = issue_async(route, coupon_id, 1)
            assert (response.status, response.code) == (503, "FAIL_COUPON_ISSUE_REQUEST")
        monkeypatch.setenv("REDIS_PORT", redis_port)
        bootstrap.reset()
        assert issue_queue.depth() == 0
        assert issue_rows(coupon_id) == 0
        assert services().adapters.seats.seats_taken(coupon_id) == 0

    def test_crash_between_reserve_and_send_is_repaired(self, poller: Poller, monkeypatch: pytest.MonkeyPatch) -> None:
        coupon_id = new_coupon_id(totalQuantity=3, issueMode="ASYNC")
        # What a process leaves when it dies right after the Lua script: a seat, pending, no message.
        long_ago_ms = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
        services().adapters.seats.reserve(PendingReservation(coupon_id, 77, "lost-token", long_ago_ms), 3)
        assert issue_status(coupon_id, 77).body["status"] == "RESERVED"
        report = services().reconcile.run()
        assert (report.resent, report.resent_users) == (1, [(coupon_id, 77)])
        wait_until(lambda: issue_rows(coupon_id) == 1, what="the resent reservation persisted")
        assert issue_status(coupon_id, 77).body["status"] == "ISSUED"
        wait_until(lambda: not services().adapters.ledger.pending(coupon_id), what="pending cleared")
        assert services().reconcile.run().drift == 0

    def test_reconcile_by_hand_through_the_function(
        self, issue_queue: QueuePair, local_account: LocalAccount, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from localdev.reconcile import run_once

        monkeypatch.setenv("LOCAL_API_PORT", str(free_port()))  # no running stack: a runtime of its own
        coupon_id = new_coupon_id(totalQuantity=3, issueMode="ASYNC")
        long_ago_ms = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
        services().adapters.seats.reserve(PendingReservation(coupon_id, 8, "lost", long_ago_ms), 3)
        report = run_once()
        assert (report["couponsChecked"], report["resent"]) == (1, 1)
        # The function sent it to the stack's queue, signed with the stack's key.
        sqs = sqs_client()
        resent = []
        while batch := sqs.receive_message(QueueUrl=local_account.queue_url, MaxNumberOfMessages=10).get("Messages"):
            resent += [services().adapters.seal.open(m["Body"]) for m in batch]
        assert [(m.coupon_id, m.user_id, m.token) for m in resent if m.coupon_id == coupon_id] == [
            (coupon_id, 8, "lost")
        ]

    def test_one_coupon_that_fails_leaves_the_others_reconciled(
        self, issue_queue: QueuePair, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        broken, healthy = (new_coupon_id(totalQuantity=3, issueMode="ASYNC") for _ in range(2))
        long_ago_ms = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
        for coupon_id in (broken, healthy):
            services().adapters.seats.reserve(PendingReservation(coupon_id, 9, "lost", long_ago_ms), 3)
        store = services().adapters.ledger
        real_pending = store.pending

        def pending(coupon_id: int) -> Any:
            if coupon_id == broken:
                raise ValueError("an entry this version cannot read")
            return real_pending(coupon_id)

        monkeypatch.setattr(store, "pending", pending)
        report = services().reconcile.run()
        assert (report.failed, report.resent_users) == ([broken], [(healthy, 9)])
        assert issue_queue.depth() == 1

    def test_a_reservation_is_resent_with_backoff_not_on_every_pass(self, issue_queue: QueuePair) -> None:
        """While MySQL cannot take it (nothing consumes here), passes every minute must not pile up copies."""
        coupon_id = new_coupon_id(totalQuantity=3, issueMode="ASYNC")
        long_ago_ms = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
        services().adapters.seats.reserve(PendingReservation(coupon_id, 5, "lost", long_ago_ms), 3)
        assert [services().reconcile.run().resent for _ in range(3)] == [1, 0, 0]
        assert issue_queue.depth() == 1
        ledger = services().adapters.ledger
        first = ledger.resend_records(coupon_id, [5])[5]
        assert first.count == 1
        # Two grace periods later (60 s, doubled after the first resend), it is due again, once.
        later = bootstrap.Services(services().settings, services().adapters, epoch_ms=lambda: first.last_ms + 121_000)
        assert [later.reconcile.run().resent for _ in range(2)] == [1, 0]
        assert issue_queue.depth() == 2
        assert ledger.resend_records(coupon_id, [5])[5] == ResendRecord(2, first.last_ms + 121_000)

    def test_ended_coupons_are_watched_until_settled_then_their_keys_expire(self, issue_queue: QueuePair) -> None:
        now = datetime.now(UTC)
        window = {"dateIssueStart": iso(now - timedelta(days=5)), "dateIssueEnd": iso(now - timedelta(days=2))}
        pending, settled = (new_coupon_id(totalQuantity=3, issueMode="ASYNC", **window) for _ in range(2))
        running = new_coupon_id(totalQuantity=3, issueMode="ASYNC")
        long_ago_ms = int((now - timedelta(days=3)).timestamp() * 1000)
        for coupon_id in (pending, settled, running):
            services().adapters.seats.reserve(PendingReservation(coupon_id, 4, "t", long_ago_ms), 3)
        services().adapters.ledger.confirm_persisted(settled, [4])  # its one reservation reached MySQL
        report = services().reconcile.run()
        # Ended two days ago, still pending: watched (it used to be dropped a day after its end).
        assert (pending, 4) in report.resent_users
        redis = services().adapters.redis
        assert 0 < int(redis.ttl(redis_keys.reserved_users(settled))) <= 24 * 3600  # settled: keys expire
        assert int(redis.ttl(redis_keys.reserved_users(pending))) == -1  # not yet
        assert int(redis.ttl(redis_keys.reserved_users(running))) == -1  # still selling

    def test_recent_pending_reservation_is_left_alone(self, issue_queue: QueuePair) -> None:
        coupon_id = new_coupon_id(totalQuantity=3, issueMode="ASYNC")
        assert issue_async(IssueRoute.V2, coupon_id, 5).status == 202
        assert services().reconcile.run().resent == 0  # within the grace period: its message is on the way
        assert issue_queue.depth() == 1

    def test_mysql_down_during_a_batch_then_persisted(
        self, issue_queue: QueuePair, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        coupon_id = new_coupon_id(totalQuantity=10, issueMode="ASYNC")
        for user in (1, 2, 3):
            assert issue_async(IssueRoute.V2, coupon_id, user).status == 202
        db_port = os.environ["DB_PORT"]
        monkeypatch.setenv("DB_PORT", "1")
        bootstrap.reset()
        # batch_persist in this process, so that it sees the broken port (containers get the template's).
        persist = one_at_a_time("batch_persist")
        failing = Poller(issue_queue.url, issue_queue.settings, persist).start()
        wait_until(lambda: failing.batches >= 1, what="a batch attempted while MySQL is down")
        failing.stop()
        monkeypatch.setenv("DB_PORT", db_port)
        bootstrap.reset()
        assert issue_rows(coupon_id) == 0
        assert issue_queue.depth() == 3  # nothing deleted: every record was reported failed
        healthy = Poller(issue_queue.url, issue_queue.settings, persist).start()
        try:
            wait_until(lambda: issue_rows(coupon_id) == 3, what="records retried and persisted")
        finally:
            healthy.stop()
        assert issued_quantity(coupon_id) == 3

    def test_same_record_delivered_twice_is_persisted_once(self, issue_queue: QueuePair) -> None:
        coupon_id = new_coupon_id(totalQuantity=10, issueMode="ASYNC")
        assert issue_async(IssueRoute.V2, coupon_id, 1).status == 202
        sqs = sqs_client(issue_queue.endpoint)
        message = sqs.receive_message(QueueUrl=issue_queue.url, WaitTimeSeconds=2)["Messages"][0]
        event = sqs_event("arn:aws:sqs:us-east-1:000000000000:test", [message, message])
        for _ in range(2):  # twice in one batch, and the batch twice
            response = invoke("batch_persist", event)
            assert response == {"batchItemFailures": []}
        assert issue_rows(coupon_id) == issued_quantity(coupon_id) == 1

    def test_a_record_out_of_range_fails_alone_not_its_whole_coupon(self) -> None:
        coupon_id = new_coupon_id(totalQuantity=10, issueMode="ASYNC")
        now_ms = int(datetime.now(UTC).timestamp() * 1000)
        bodies = {  # signed by the service, as a bug of its own would send them
            "good-1": ReservationMessage(coupon_id, 1, "t1", now_ms),
            "year-5138": ReservationMessage(coupon_id, 2, "t2", 10**17),
            "huge-user": ReservationMessage(coupon_id, 2**64, "t3", now_ms),
            "good-4": ReservationMessage(coupon_id, 4, "t4", now_ms),
        }
        seal = services().adapters.seal
        messages = [{"MessageId": key, "ReceiptHandle": key, "Body": seal.seal(m)} for key, m in bodies.items()]
        response = invoke("batch_persist", sqs_event("arn:aws:sqs:us-east-1:000000000000:test", messages))
        failed = {failure["itemIdentifier"] for failure in response["batchItemFailures"]}
        assert failed == {"year-5138", "huge-user"}
        assert issue_rows(coupon_id) == issued_quantity(coupon_id) == 2

    def test_poison_record_goes_to_the_dlq_and_blocks_nobody(self, poller: Poller, issue_queue: QueuePair) -> None:
        coupon_id = new_coupon_id(totalQuantity=10, issueMode="ASYNC")
        sqs = sqs_client(issue_queue.endpoint)
        sqs.send_message(QueueUrl=issue_queue.url, MessageBody="{not a reservation")
        for user in (1, 2):
            assert issue_async(IssueRoute.V2, coupon_id, user).status == 202
        wait_until(lambda: issue_rows(coupon_id) == 2, what="good records persisted beside the poison one")
        # 5 receives (the template's maxReceiveCount), 2 s visibility each, then the DLQ.
        wait_until(lambda: issue_queue.depth(issue_queue.dlq_url) == 1, timeout_s=40, what="poison record in the DLQ")
        body = sqs.receive_message(QueueUrl=issue_queue.dlq_url, WaitTimeSeconds=1)["Messages"][0]["Body"]
        assert body == "{not a reservation"

    def test_after_redis_lost_everything_nothing_is_sold_until_the_seats_are_recounted(self, poller: Poller) -> None:
        coupon_id = new_coupon_id(totalQuantity=10, issueMode="ASYNC")
        answers = fire([(IssueRoute.V2, coupon_id, user) for user in range(1, 10)])
        assert all(code in ("RESERVED", HELD_AFTER_503) for _, code in answers)
        wait_until(lambda: issue_rows(coupon_id) == 9, what="9 persisted")
        services().adapters.redis.flushdb()  # a failover to an empty replica, a restart without persistence
        services().adapters.catalog.local.clear()
        for route in (IssueRoute.V2, IssueRoute.V1_ASYNC):
            paused = issue_async(route, coupon_id, 11)
            assert (paused.status, paused.code) == (503, "FAIL_COUPON_ISSUE_REQUEST"), paused
            assert paused.headers.get("Retry-After")
        assert issue_status(coupon_id, 1).body["status"] == "ISSUED"  # MySQL knows
        assert issue_status(coupon_id, 11).status == 503  # not 404: its reservation might be on its way
        # Once every send begun before the loss is done and the queue is empty, the seats are recounted.
        lost_at = int(services().adapters.redis.get(redis_keys.seats_lost_at(coupon_id)))  # type: ignore[arg-type]
        later = bootstrap.Services(services().settings, services().adapters, epoch_ms=lambda: lost_at + 10_000)
        assert later.reconcile.run().recounted == [coupon_id]
        assert services().adapters.seats.seats_taken(coupon_id) == 9
        assert issue_async(IssueRoute.V2, coupon_id, 10).status == 202  # the last seat, and only it
        refused = issue_async(IssueRoute.V2, coupon_id, 11)
        assert (refused.status, refused.code) == (409, "INVALID_COUPON_ISSUE_QUANTITY")
        wait_until(lambda: issue_rows(coupon_id) == 10, what="the tenth persisted")
        assert issue_status(coupon_id, 10).body["status"] == "ISSUED"
        assert issue_rows(coupon_id) == issued_quantity(coupon_id) == 10

    def test_a_refusal_is_final_in_mysql_even_after_redis_lost_everything(self, poller: Poller) -> None:
        coupon_id = new_coupon_id(totalQuantity=1, issueMode="ASYNC")
        assert issue_async(IssueRoute.V2, coupon_id, 1).status == 202
        wait_until(lambda: issue_rows(coupon_id) == 1, what="the first persisted")
        # A reservation Redis should never have let through (say, from a replica that had not caught up):
        # MySQL's cut refuses it, records the refusal with the decision, and the coupon pauses.
        services().persist.persist([ReservationMessage(coupon_id, 2, "late", int(time.time() * 1000))])
        assert issue_status(coupon_id, 2).body["status"] == "REJECTED"
        assert services().adapters.ledger.uncounted([coupon_id]) == [coupon_id]
        services().adapters.redis.flushdb()  # and now Redis forgets the refusal too
        assert issue_status(coupon_id, 2).body["status"] == "REJECTED"  # MySQL recorded it with the decision
        assert issue_rows(coupon_id) == issued_quantity(coupon_id) == 1

    def test_a_stale_seat_state_is_caught_when_mysql_holds_more_than_it(self, poller: Poller) -> None:
        """A replica promoted before it caught up keeps the completeness proof of its older state. The first
        issue it does not hold (batch_persist, reconciliation) removes the proof: the coupon pauses."""
        coupon_id = new_coupon_id(totalQuantity=5, issueMode="ASYNC")
        for user in (1, 2):
            assert issue_async(IssueRoute.V2, coupon_id, user).status == 202
        wait_until(lambda: issue_rows(coupon_id) == 2, what="2 persisted")
        services().adapters.redis.srem(redis_keys.reserved_users(coupon_id), "2")  # the replica lacks user 2
        report = services().reconcile.run()
        assert report.missing == 1 and services().adapters.ledger.uncounted([coupon_id]) == [coupon_id]
        paused = issue_async(IssueRoute.V2, coupon_id, 3)
        assert (paused.status, paused.code) == (503, "FAIL_COUPON_ISSUE_REQUEST")
