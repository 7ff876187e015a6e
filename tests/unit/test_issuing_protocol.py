"""The issuing protocol explored under every fault: a stateful property test over the services, wired by the
composition root on the fakes of tests/unit/fakes.py.

Hypothesis interleaves requests on all three paths, batch deliveries (some cut short by a crash, so SQS
delivers them again), reconcile passes at later times, messages moved to the dead-letter queue, and Redis
losing everything; any port call of a step may fail before its work or after it (the work done, the answer
lost; for a send, also a timeout that never arrived). After every step: never more rows than the total,
``issued_quantity`` equal to the rows, every ``200`` backed by its row. Once the faults end and the system
settles (deliveries, DLQ redrive, reconcile passes, recounts): every ``202`` ends ``ISSUED`` (a promise
kept: a ``REJECTED`` is excused only for each reservation redriven from the dead-letter queue after Redis
lost its state), and Redis holds exactly the seats MySQL issued.

CI runs the default budget (seconds); ``make explore`` runs a long one (EXPLORE_EXAMPLES). A failure prints
the shortest sequence of steps that breaks an invariant: add it below as a regression example.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from couponcore.domain.coupon import IssueMode, NewCoupon
from couponcore.domain.errors import CouponError, DependencyUnavailableError, ErrorCode
from couponcore.domain.issue_route import IssueRoute
from couponcore.domain.reservation import ReservationMessage
from couponcore.services.coupons import IssueStatus
from tests.unit.fakes import FakeAdapters, fake_services

NOW = datetime(2026, 11, 1, 11, 0, 0)
TOTAL = 3
USERS = st.integers(min_value=1, max_value=6)
# Where a step's dependency fails: before its work, or after it (the answer lost); an SQS send may also time
# out without arriving (the sender cannot tell it from sqs-after-work).
FAULTS = st.sampled_from(
    [
        *("none", "none", "none"),
        *("redis", "redis-after-work"),
        *("sqs", "sqs-after-work", "sqs-lost"),
        *("mysql", "mysql-after-commit"),
    ]
)
SETTLE_STEP_MS = 31 * 60 * 1000  # past the longest gap between two resends
EXAMPLES = int(os.environ.get("EXPLORE_EXAMPLES", "150"))


class IssuingProtocol(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.adapters = FakeAdapters()
        self.now_ms = 1_800_000_000_000
        self.services = fake_services(self.adapters, clock=lambda: NOW, epoch_ms=lambda: self.now_ms)
        self.dead_letters: list[ReservationMessage] = []
        self.dead_lettered: set[int] = set()  # users whose reservation went to the dead-letter queue
        self.losses = 0
        self.reserved: set[int] = set()  # users answered 202 on the async coupon
        self.issued_sync: set[int] = set()  # users answered 200 on the sync coupon

    @initialize()
    def coupons(self) -> None:
        window = (NOW - timedelta(hours=1), NOW + timedelta(hours=1))
        create = self.services.coupons.create
        self.async_coupon = create(NewCoupon("async", TOTAL, 1, 0, *window, IssueMode.ASYNC)).coupon.id
        self.sync_coupon = create(NewCoupon("sync", TOTAL, 1, 0, *window, IssueMode.SYNC)).coupon.id

    # ---- faults ----

    def _inject(self, fault: str) -> None:
        adapters = self.adapters
        adapters.seats.down = fault == "redis"
        adapters.seats.fail_after_work = fault == "redis-after-work"
        adapters.queue.down = fault == "sqs"
        adapters.queue.fail_after_work = fault == "sqs-after-work"
        adapters.queue.lose_answer = fault == "sqs-lost"
        adapters.db.down = fault == "mysql"
        adapters.db.fail_after_commit = fault == "mysql-after-commit"

    def _heal(self) -> None:
        self._inject("none")

    # ---- steps ----

    @rule(route=st.sampled_from(IssueRoute), user=USERS, fault=FAULTS)
    def request(self, route: IssueRoute, user: int, fault: str) -> None:
        self._inject(fault)
        try:
            if route is IssueRoute.V1:
                self.services.sync_issue.issue(self.sync_coupon, user)
                self.issued_sync.add(user)
            elif route is IssueRoute.V2:
                self.services.async_issue.reserve_v2(self.async_coupon, user)
                self.reserved.add(user)
            else:
                self.services.async_issue.reserve_v1_async(self.async_coupon, user)
                self.reserved.add(user)
        except CouponError as refusal:
            assert refusal.code is not ErrorCode.WRONG_ISSUE_MODE
        except DependencyUnavailableError:
            pass  # a 503: the client retries, or asks the status route
        finally:
            self._heal()

    @precondition(lambda self: self.adapters.queue.sent)
    @rule(size=st.integers(min_value=1, max_value=10), crash=st.booleans(), fault=FAULTS)
    def deliver(self, size: int, crash: bool, fault: str) -> None:
        """batch_persist takes a batch; unless it crashes before answering, what it persisted leaves the
        queue (a failed coupon's records stay for the next delivery)."""
        queue = self.adapters.queue.sent
        batch = queue[:size]
        self._inject(fault)
        try:
            report = self.services.persist.persist(batch)
        finally:
            self._heal()
        if crash:
            return
        done = [m for m in batch if m.coupon_id not in report.failed_coupons]
        for message in done:
            queue.remove(message)

    @precondition(lambda self: self.adapters.queue.sent)
    @rule(index=st.integers(min_value=0, max_value=9))
    def dead_letter(self, index: int) -> None:
        """A record received too often without success moves to the dead-letter queue."""
        queue = self.adapters.queue.sent
        message = queue.pop(index % len(queue))
        self.dead_letters.append(message)
        self.dead_lettered.add(message.user_id)

    @rule(later_ms=st.integers(min_value=0, max_value=300_000), fault=FAULTS)
    def reconcile(self, later_ms: int, fault: str) -> None:
        self.now_ms += later_ms
        self._inject(fault)
        try:
            self.services.reconcile.run()
        except DependencyUnavailableError:
            pass  # the pass fails as a whole (listing the coupons); the schedule runs the next one
        finally:
            self._heal()

    @rule()
    def redis_loses_everything(self) -> None:
        """A failover to an empty replica, a restart, a flush (this container's own memory forgets too)."""
        self.adapters.seats.lose_everything()
        self.adapters.catalog.flags.clear()
        self.losses += 1

    # ---- what must hold after every step ----

    def _rows(self, coupon_id: int) -> set[int]:
        return {user for (coupon, user) in self.adapters.db.issues if coupon == coupon_id}

    @invariant()
    def never_more_than_the_total_and_counted_exactly(self) -> None:
        for coupon_id in (self.async_coupon, self.sync_coupon):
            rows = self._rows(coupon_id)
            assert len(rows) <= TOTAL
            assert self.adapters.db.coupons[coupon_id].issued_quantity == len(rows)

    @invariant()
    def every_200_has_its_row(self) -> None:
        assert self.issued_sync <= self._rows(self.sync_coupon)

    def teardown(self) -> None:
        """The faults end and the system settles: every 202 has its final answer, no seat is held forever."""
        self._heal()
        queue = self.adapters.queue.sent
        queue.extend(self.dead_letters)  # the operator redrives the dead letters
        self.dead_letters.clear()
        seats = self.adapters.seats
        for _ in range(20):
            while queue:
                report = self.services.persist.persist(list(queue))
                assert not report.failed_coupons
                queue.clear()
            if not seats.pending(self.async_coupon) and not seats.uncounted([self.async_coupon]):
                break
            self.now_ms += SETTLE_STEP_MS
            self.services.reconcile.run()
        assert not seats.pending(self.async_coupon), "a reservation never settled"
        assert not seats.uncounted([self.async_coupon]), "the coupon's seats were never recounted"
        statuses = {user: self.services.coupons.issue_status(self.async_coupon, user).status for user in self.reserved}
        # A 202 is a promise: the seat was counted, so it ends ISSUED. The one exception: a reservation whose
        # message sat in the dead-letter queue while Redis lost its state is seen by no recount; redriven later,
        # it takes a seat, and one 202 ends REJECTED for it (docs/design.md).
        broken = {user: status for user, status in statuses.items() if status is not IssueStatus.ISSUED}
        excused = len(self.dead_lettered) if self.losses else 0
        assert len(broken) <= excused, (broken, self.dead_lettered)
        assert seats.seat_holders(self.async_coupon) == self._rows(self.async_coupon), "Redis and MySQL disagree"
        self.never_more_than_the_total_and_counted_exactly()


IssuingProtocol.TestCase.settings = settings(
    max_examples=EXAMPLES, stateful_step_count=40, deadline=None, derandomize="EXPLORE_EXAMPLES" not in os.environ
)
TestIssuingProtocol = IssuingProtocol.TestCase


def test_a_reservation_lost_by_redis_and_dead_lettered_still_settles() -> None:
    """The worst pair the explorer combines: the queue gave the record up and Redis forgot the pending entry,
    so reconciliation has nothing to resend. The redriven dead letter alone must still end it ISSUED."""
    protocol = IssuingProtocol()
    protocol.coupons()
    protocol.request(IssueRoute.V2, user=1, fault="none")
    protocol.dead_letter(index=0)
    protocol.redis_loses_everything()
    protocol.reconcile(later_ms=120_000, fault="none")
    protocol.teardown()
    assert protocol.services.coupons.issue_status(protocol.async_coupon, 1).status is IssueStatus.ISSUED


def test_a_send_whose_answer_was_lost_is_issued_once() -> None:
    """SQS took the message but the client heard a timeout: the seat was given back, yet the message is on
    its way. MySQL issues it once, the client's 503 turns out ISSUED, and Redis learns the seat again."""
    protocol = IssuingProtocol()
    protocol.coupons()
    protocol.request(IssueRoute.V2, user=1, fault="sqs-after-work")
    assert protocol.reserved == set() and len(protocol.adapters.queue.sent) == 1
    protocol.deliver(size=10, crash=False, fault="none")
    protocol.teardown()
    assert protocol.services.coupons.issue_status(protocol.async_coupon, 1).status is IssueStatus.ISSUED
    assert protocol.adapters.seats.seat_holders(protocol.async_coupon) == {1}
