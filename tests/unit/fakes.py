"""In-memory stand-ins for the ports of couponcore.services.ports, gathered in ``FakeAdapters``: unit tests
build the services through the composition root (couponcore.bootstrap.Services) on them, and run in
milliseconds with no server. Each fake keeps the contract of its port and asks the domain for every rule
(the seats decide by ``reserve_outcome``, which the Lua script mirrors; the V1 batch by
``Coupon.issue_refusal``), so a rule changed in the domain changes here too. Each can be told to fail:
before its work (``down``), or after it (``fail_after_work``: the work is done, the answer lost)."""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from types import TracebackType

from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.base import BasePersistenceLayer
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import DataRecord

from couponcore.bootstrap import Services
from couponcore.config import Settings
from couponcore.domain.coupon import Coupon, CouponType, IssueMode, NewCoupon
from couponcore.domain.errors import DependencyUnavailableError, OutcomeUnknownError
from couponcore.domain.events import DomainEvent
from couponcore.domain.redemption import HeldCoupon, WalletEntry
from couponcore.domain.reservation import (
    PendingReservation,
    ResendRecord,
    ReservationMessage,
    ReserveOutcome,
    reserve_outcome,
)
from couponcore.metrics import MetricSpec
from couponcore.services.health import Probe
from couponcore.services.message_bus import EventBus
from couponcore.services.ports import (
    CachedCoupon,
    Clock,
    IssuedFacts,
    LockNotAcquiredError,
    SeatState,
    SyncIssueOutcome,
    UseWrite,
)
from couponcore.services.recount import RecountCosts


@dataclass
class Database:
    """What MySQL holds."""

    coupons: dict[int, Coupon] = field(default_factory=dict)
    issues: dict[tuple[int, int], HeldCoupon] = field(default_factory=dict)
    issue_rows: dict[tuple[int, int], int] = field(default_factory=dict)  # each issue's row id
    rejections: set[tuple[int, int]] = field(default_factory=set)
    ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    down: bool = False
    fail_after_commit: bool = False  # the next commit is made, then the connection is lost before its answer
    failing_coupons: set[int] = field(default_factory=set)  # their row cannot be locked
    transactions: int = 0  # units of work begun

    def check(self, coupon_id: int | None = None) -> None:
        if self.down or coupon_id in self.failing_coupons:
            raise DependencyUnavailableError("mysql")


class FakeCoupons:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, coupon: NewCoupon, now: datetime) -> int:
        coupon_id = next(self._db.ids)
        self._db.coupons[coupon_id] = Coupon(
            coupon_id,
            coupon.title,
            CouponType.FIRST_COME_FIRST_SERVED,
            coupon.total_quantity,
            0,
            coupon.discount_amount,
            coupon.min_available_amount,
            coupon.date_issue_start,
            coupon.date_issue_end,
            coupon.issue_mode,
            coupon.expires_in_days,
            coupon.date_use_end,
        )
        return coupon_id

    def get(self, coupon_id: int) -> Coupon | None:
        self._db.check()
        return self._db.coupons.get(coupon_id)

    def get_for_update(self, coupon_id: int) -> Coupon | None:
        self._db.check(coupon_id)
        return self._db.coupons.get(coupon_id)

    def count_issued(self, coupon_id: int, added: int, now: datetime) -> None:
        coupon = self._db.coupons[coupon_id]
        self._db.coupons[coupon_id] = replace(coupon, issued_quantity=coupon.issued_quantity + added)

    def async_windows(self) -> list[tuple[int, datetime]]:
        self._db.check()
        return [(c.id, c.date_issue_end) for c in self._db.coupons.values() if c.issue_mode is IssueMode.ASYNC]


class FakeIssues:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add_many(self, coupon_id: int, issues: Sequence[tuple[int, datetime, datetime | None]], now: datetime) -> None:
        for user, at, expire in issues:
            self._db.issues[coupon_id, user] = HeldCoupon(coupon_id, user, at, expire)
            self._db.issue_rows[coupon_id, user] = next(self._db.ids)

    def users_of(self, coupon_id: int) -> set[int]:
        self._db.check()
        return {user for (coupon, user) in self._db.issues if coupon == coupon_id}

    def issued_among(self, coupon_id: int, user_ids: Sequence[int]) -> set[int]:
        return {user for user in user_ids if (coupon_id, user) in self._db.issues}

    def find(self, coupon_id: int, user_id: int) -> HeldCoupon | None:
        self._db.check()
        return self._db.issues.get((coupon_id, user_id))

    def wallet(self, user_id: int, before: tuple[datetime, int] | None, limit: int) -> list[WalletEntry]:
        self._db.check()
        entries = []
        for (coupon_id, user), held in self._db.issues.items():
            coupon = self._db.coupons[coupon_id]
            if user == user_id:
                row = self._db.issue_rows[coupon_id, user]
                entries.append(
                    WalletEntry(held, coupon.title, coupon.discount_amount, coupon.min_available_amount, row)
                )
        entries.sort(key=lambda entry: entry.position, reverse=True)
        return [entry for entry in entries if before is None or entry.position < before][:limit]

    def reject(self, coupon_id: int, user_ids: Sequence[int], now: datetime) -> None:
        self._db.rejections.update((coupon_id, user) for user in user_ids)

    def was_rejected(self, coupon_id: int, user_id: int) -> bool:
        return (coupon_id, user_id) in self._db.rejections


class FakeUnitOfWork:
    """Writes go to a copy of the database that replaces it on commit; events leave after the block."""

    def __init__(self, db: Database, bus: EventBus) -> None:
        self._db = db
        self._bus = bus
        self.commits = 0

    def __enter__(self) -> FakeUnitOfWork:
        self._db.check()
        self._db.transactions += 1
        self._work = replace(
            self._db, coupons=dict(self._db.coupons), issues=dict(self._db.issues), rejections=set(self._db.rejections)
        )
        self.coupons, self.issues = FakeCoupons(self._work), FakeIssues(self._work)
        self._events: list[DomainEvent] = []
        self._committed: list[DomainEvent] = []
        self._after_commit = False
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._bus.publish_all(self._committed)

    def commit(self) -> None:
        self._db.check()
        self._db.coupons, self._db.issues, self._db.rejections = (
            self._work.coupons,
            self._work.issues,
            self._work.rejections,
        )
        self._committed += self._events
        self._events = []
        self.commits += 1
        if self._db.fail_after_commit:
            self._db.fail_after_commit = False
            raise DependencyUnavailableError("mysql")

    def raise_event(self, event: DomainEvent) -> None:
        (self._committed if self._after_commit else self._events).append(event)

    def issue_sync_and_commit(self, coupon_id: int, user_id: int, now: datetime) -> SyncIssueOutcome:
        """What SYNC_ISSUE_BATCH does, in Python."""
        coupon = self.coupons.get_for_update(coupon_id)
        duplicate = (coupon_id, user_id) in self._work.issues
        allowed = (
            coupon is not None and coupon.issue_refusal(now, mode=IssueMode.SYNC, already_issued=duplicate) is None
        )
        if allowed:
            assert coupon is not None
            self.issues.add_many(coupon_id, [(user_id, now, coupon.expiry_for(now))], now)
            self.coupons.count_issued(coupon_id, 1, now)
        self.commit()
        self._after_commit = True
        return SyncIssueOutcome(coupon_before=coupon, inserted=allowed)

    def lock_for_persist(self, coupon_id: int, user_ids: Sequence[int]) -> tuple[Coupon | None, set[int]]:
        """What PERSIST_READ_BATCH reads, in Python."""
        return self.coupons.get_for_update(coupon_id), self.issues.issued_among(coupon_id, user_ids)

    def persist_and_commit(
        self,
        coupon_id: int,
        issues: Sequence[tuple[int, datetime, datetime | None]],
        refused: Sequence[int],
        now: datetime,
    ) -> None:
        """What persist_and_commit's batch writes, in Python."""
        self.issues.reject(coupon_id, refused, now)
        self.issues.add_many(coupon_id, issues, now)
        if issues:
            self.coupons.count_issued(coupon_id, len(issues), now)
        self.commit()
        self._after_commit = True

    def redeem_and_commit(self, coupon_id: int, user_id: int, order_id: str, now: datetime) -> UseWrite:
        """What REDEEM_BATCH does, in Python."""
        held = self._work.issues.get((coupon_id, user_id))
        changed = held is not None and held.date_used is None and (held.date_expire is None or now < held.date_expire)
        if changed:
            assert held is not None
            self._work.issues[coupon_id, user_id] = held = replace(held, date_used=now, order_id=order_id)
        self.commit()
        return UseWrite(changed, held)

    def restore_and_commit(self, coupon_id: int, user_id: int, order_id: str, now: datetime) -> UseWrite:
        """What RESTORE_BATCH does, in Python."""
        held = self._work.issues.get((coupon_id, user_id))
        changed = held is not None and held.date_used is not None and held.order_id == order_id
        if changed:
            assert held is not None
            held = replace(held, date_used=None, order_id=None, restored_order_id=order_id)
            self._work.issues[coupon_id, user_id] = held
        self.commit()
        return UseWrite(changed, held)


class FakeSeats:
    """Seats as the Redis scripts keep them: the SeatStore and the SeatLedger ports on one state, as both
    are on one Redis. ``lose_everything`` is a failover to an empty replica."""

    def __init__(self) -> None:
        self.reserved: dict[int, set[int]] = {}
        self.pending_entries: dict[int, dict[int, str]] = {}  # as stored: PendingReservation.stored()
        self.rejected: dict[int, set[int]] = {}
        self.resends: dict[int, dict[int, ResendRecord]] = {}
        self.counted: set[int] = set()  # coupons whose seat state is known complete
        self.lost_at: dict[int, int] = {}
        self.expiring: set[int] = set()
        self.down = False
        self.fail_after_work = False  # the next write does its work, then its answer is lost
        self.calls = 0
        self.requests: dict[tuple[int, int], int] = {}  # this second's requests per (coupon, user)
        self.issued_at: dict[tuple[int, int], IssuedFacts | None] = {}  # kept facts; None marks a use changed

    def _call(self) -> None:
        self.calls += 1
        if self.down:
            raise DependencyUnavailableError("redis")

    def _answered(self) -> None:
        if self.fail_after_work:
            self.fail_after_work = False
            raise DependencyUnavailableError("redis")

    def lose_everything(self) -> None:
        self.reserved, self.pending_entries, self.rejected, self.resends = {}, {}, {}, {}
        self.counted, self.lost_at, self.issued_at = set(), {}, {}

    # ---- SeatStore ----

    def count_request(self, coupon_id: int, user_id: int) -> int:
        """The fair share's counter, shared by the reservation script and the admit call as in Redis."""
        self.requests[coupon_id, user_id] = self.requests.get((coupon_id, user_id), 0) + 1
        return self.requests[coupon_id, user_id]

    def next_second(self) -> None:
        self.requests = {}

    def reserve(self, seat: PendingReservation, total: int | None, *, fair_share_per_s: int = 0) -> ReserveOutcome:
        self._call()
        if fair_share_per_s and self.count_request(seat.coupon_id, seat.user_id) > fair_share_per_s:
            return ReserveOutcome.OVER_FAIR_SHARE
        seats = self.reserved.setdefault(seat.coupon_id, set())
        counted = seat.coupon_id in self.counted
        outcome = reserve_outcome(counted=counted, holds_seat=seat.user_id in seats, taken=len(seats), total=total)
        if outcome is ReserveOutcome.RESERVED:
            seats.add(seat.user_id)
            self.pending_entries.setdefault(seat.coupon_id, {})[seat.user_id] = seat.stored()
            self.rejected.get(seat.coupon_id, set()).discard(seat.user_id)
        self._answered()
        return outcome

    def release(self, seat: PendingReservation, *, rejected: bool = False) -> bool:
        self._call()
        coupon_id, user_id = seat.coupon_id, seat.user_id
        stored = self.pending_entries.get(coupon_id, {}).get(user_id)
        if stored is None or PendingReservation.from_stored(coupon_id, user_id, stored).token != seat.token:
            return False
        del self.pending_entries[coupon_id][user_id]
        self.reserved[coupon_id].discard(user_id)
        self.resends.get(coupon_id, {}).pop(user_id, None)
        if rejected:
            self.rejected.setdefault(coupon_id, set()).add(user_id)
        self._answered()
        return True

    def holds_seat(self, coupon_id: int, user_id: int) -> bool:
        self._call()
        return user_id in self.reserved.get(coupon_id, set())

    def seats_taken(self, coupon_id: int) -> int:
        self._call()
        return len(self.reserved.get(coupon_id, set()))

    def reservation_state(self, coupon_id: int, user_id: int) -> SeatState:
        self._call()
        return SeatState(
            holds_seat=user_id in self.reserved.get(coupon_id, set()),
            rejected=user_id in self.rejected.get(coupon_id, set()),
            counted=coupon_id in self.counted,
            pending=user_id in self.pending_entries.get(coupon_id, {}),
            issued=self.issued_at.get((coupon_id, user_id)),
        )

    def remember_issued(self, coupon_id: int, user_id: int, facts: IssuedFacts) -> None:
        self._call()
        self.issued_at.setdefault((coupon_id, user_id), facts)

    def forget_issued(self, coupon_id: int, user_id: int) -> None:
        self._call()
        self.issued_at[coupon_id, user_id] = None

    # ---- SeatLedger ----

    def confirm_persisted(
        self, coupon_id: int, user_ids: Iterable[int], issued: Mapping[int, IssuedFacts] | None = None
    ) -> int:
        self._call()
        users = list(user_ids)
        for user, facts in (issued or {}).items():
            self.issued_at.setdefault((coupon_id, user), facts)
        for user in users:
            self.pending_entries.get(coupon_id, {}).pop(user, None)
            self.resends.get(coupon_id, {}).pop(user, None)
        self._answered()
        return sum(1 for user in users if user not in self.reserved.get(coupon_id, set()))

    def forget_count(self, coupon_id: int, now_ms: int) -> bool:
        self._call()
        was_counted = coupon_id in self.counted
        self.counted.discard(coupon_id)
        self.lost_at.setdefault(coupon_id, now_ms)
        return was_counted

    def loss_seen_at(self, coupon_id: int, now_ms: int) -> int | None:
        self._call()
        return None if coupon_id in self.counted else self.lost_at.setdefault(coupon_id, now_ms)

    def uncounted(self, coupon_ids: Sequence[int]) -> list[int]:
        self._call()
        return [coupon_id for coupon_id in coupon_ids if coupon_id not in self.counted]

    def rebuild(self, coupon_id: int, issued_users: Iterable[int], epoch_ms: int) -> int | None:
        self._call()
        if coupon_id in self.counted:
            return None
        self.reserved[coupon_id] = set(issued_users) | set(self.pending_entries.get(coupon_id, {}))
        self.counted.add(coupon_id)
        return self.lost_at.pop(coupon_id, 0)

    def restore_seats(self, coupon_id: int, user_ids: Iterable[int]) -> int:
        self._call()
        seats = self.reserved.setdefault(coupon_id, set())
        missing = set(user_ids) - seats
        seats |= missing
        self._answered()
        return len(missing)

    def pending(self, coupon_id: int) -> list[PendingReservation]:
        self._call()
        entries = self.pending_entries.get(coupon_id, {})
        return [PendingReservation.from_stored(coupon_id, user, stored) for user, stored in entries.items()]

    def seat_holders(self, coupon_id: int) -> set[int]:
        self._call()
        return set(self.reserved.get(coupon_id, set()))

    def with_pending(self, coupon_ids: Sequence[int]) -> list[int]:
        self._call()
        return [c for c in coupon_ids if self.pending_entries.get(c)]

    def let_expire(self, coupon_ids: Sequence[int], after_s: int) -> None:
        self._call()
        self.expiring.update(coupon_ids)

    def resend_records(self, coupon_id: int, user_ids: Sequence[int]) -> dict[int, ResendRecord]:
        self._call()
        records = self.resends.get(coupon_id, {})
        return {user: records.get(user, ResendRecord()) for user in user_ids}

    def record_resends(self, coupon_id: int, user_ids: Sequence[int], now_ms: int) -> None:
        self._call()
        records = self.resends.setdefault(coupon_id, {})
        for user in user_ids:
            records[user] = ResendRecord(records.get(user, ResendRecord()).count + 1, now_ms)
        self._answered()


class FakeLock:
    def __init__(self) -> None:
        self.busy = False
        self.held = 0

    @contextmanager
    def hold(self, coupon_id: int, wait_s: float) -> Iterator[float]:
        if self.busy:
            raise LockNotAcquiredError(str(coupon_id))
        self.held += 1
        yield 0.0


class FakeFairShare:
    """Off unless a test sets ``per_second``; it counts on the seats' counter, as both count one Redis key."""

    def __init__(self, seats: FakeSeats) -> None:
        self.per_second = 0
        self._seats = seats

    def admit(self, coupon_id: int, user_id: int) -> bool:
        self._seats._call()
        return not self.per_second or self._seats.count_request(coupon_id, user_id) <= self.per_second


class FakePassLock:
    def __init__(self) -> None:
        self.held = False

    @contextmanager
    def exclusive(self) -> Iterator[bool]:
        if self.held:
            yield False
            return
        self.held = True
        try:
            yield True
        finally:
            self.held = False


class FakeQueue:
    worst_case_s = 0.1

    def __init__(self) -> None:
        self.sent: list[ReservationMessage] = []
        self.down = False
        self.fail_after_work = False  # the next send is accepted, then its answer is lost
        self.lose_answer = False  # the next send times out: not stored, though the sender cannot know it
        self.key_unreadable = False  # the signing key's secret cannot be read

    def prepare_send(self) -> None:
        if self.key_unreadable:
            raise DependencyUnavailableError("secrets")

    def send(self, message: ReservationMessage) -> None:
        if self.down:
            raise DependencyUnavailableError("sqs")
        if self.lose_answer:
            self.lose_answer = False
            raise OutcomeUnknownError("sqs")
        self.sent.append(message)
        if self.fail_after_work:
            self.fail_after_work = False
            raise OutcomeUnknownError("sqs")

    def holds_nothing(self) -> bool:
        return not self.sent

    def send_many(self, messages: list[ReservationMessage]) -> None:
        for message in messages:
            self.send(message)


class FakeCatalog:
    """The cache with no TTLs: reads the fake database and seat store, remembers the sold-out flag."""

    def __init__(self, db: Database, seats: FakeSeats) -> None:
        self._db = db
        self._seats = seats
        self.flags: dict[int, bool] = {}

    def forget_sold_out(self, coupon_id: int) -> None:
        self.flags.pop(coupon_id, None)

    def get(self, coupon_id: int) -> CachedCoupon | None:
        coupon = self._db.coupons.get(coupon_id)
        if coupon is None:
            return None
        if coupon_id not in self.flags:
            self.refresh(coupon_id)
        return CachedCoupon(coupon, self.flags[coupon_id])

    def mark_sold_out(self, coupon_id: int) -> None:
        self.flags[coupon_id] = True

    def refresh(self, coupon_id: int) -> CachedCoupon | None:
        coupon = self._db.coupons.get(coupon_id)
        if coupon is None:
            return None
        taken = self._seats.seats_taken(coupon_id) if coupon.issue_mode is IssueMode.ASYNC else None
        self.flags[coupon_id] = not coupon.has_quantity_left(taken)
        return CachedCoupon(coupon, self.flags[coupon_id])


class FakeMetrics:
    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.labelled: Counter[tuple[str, frozenset[tuple[str, str]]]] = Counter()

    def count(self, spec: MetricSpec, value: float = 1, **labels: str) -> None:
        self.counts[spec.name] += int(value)
        self.labelled[spec.name, frozenset(labels.items())] += int(value)

    def observe(self, spec: MetricSpec, value: float, **labels: str) -> None:
        self.counts[spec.name + "#observations"] += 1

    def set_gauge(self, spec: MetricSpec, value: float, **labels: str) -> None:
        self.counts[spec.name] = int(value)


class MemoryIdempotencyStore(BasePersistenceLayer):
    """Powertools' idempotency records in a dict (the deployed store is Redis)."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.records: dict[str, DataRecord] = {}

    def _get_record(self, idempotency_key: str) -> DataRecord:
        try:
            return self.records[idempotency_key]
        except KeyError:
            raise IdempotencyItemNotFoundError from None

    def _put_record(self, data_record: DataRecord) -> None:
        existing = self.records.get(data_record.idempotency_key)
        if existing is not None and not existing.is_expired:
            raise IdempotencyItemAlreadyExistsError(old_data_record=existing)
        self.records[data_record.idempotency_key] = data_record

    def _update_record(self, data_record: DataRecord) -> None:
        self.records[data_record.idempotency_key] = data_record

    def _delete_record(self, data_record: DataRecord) -> None:
        self.records.pop(data_record.idempotency_key, None)


@dataclass
class FakeAdapters:
    """Every port in memory: what couponcore.bootstrap.Services is built on in unit tests."""

    db: Database = field(default_factory=Database)
    seats: FakeSeats = field(default_factory=FakeSeats)
    queue: FakeQueue = field(default_factory=FakeQueue)
    lock: FakeLock = field(default_factory=FakeLock)
    pass_lock: FakePassLock = field(default_factory=FakePassLock)
    metrics: FakeMetrics = field(default_factory=FakeMetrics)
    idempotency_store: MemoryIdempotencyStore = field(default_factory=MemoryIdempotencyStore)
    refresh_worst_s: float = 0.0
    recount_costs: RecountCosts = field(default_factory=lambda: RecountCosts(0.0, 0.0, 0.0))

    def __post_init__(self) -> None:
        self.catalog = FakeCatalog(self.db, self.seats)
        self.fair_share = FakeFairShare(self.seats)

    @property
    def ledger(self) -> FakeSeats:
        return self.seats

    @property
    def probes(self) -> dict[str, Probe]:
        return {"mysql": self.db.check, "redis": lambda: self.seats.holds_seat(0, 0)}

    def unit_of_work(self, bus: EventBus) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.db, bus)

    def close(self) -> None:
        return None


def fake_services(
    adapters: FakeAdapters, clock: Clock, epoch_ms: Callable[[], int], **settings: str
) -> Services[FakeAdapters]:
    """The production graph on fakes: the composition root wires them as it wires the real adapters."""
    environment = {"REDIS_TIMEOUT_S": "0.01", **settings}
    return Services(Settings.from_env(environment), adapters, clock=clock, epoch_ms=epoch_ms)
