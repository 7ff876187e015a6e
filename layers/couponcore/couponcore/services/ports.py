"""What the services need from the world outside them, each a small Protocol.

adapters/ implements them on MySQL, Redis and SQS (wired in bootstrap.py), tests/unit/fakes.py in memory.
Every adapter raises ``DependencyUnavailableError`` for a dependency that is down, slow or refusing writes, so
no service knows a driver's exceptions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Protocol, Self

from couponcore.domain.coupon import Coupon, NewCoupon
from couponcore.domain.events import DomainEvent
from couponcore.domain.redemption import HeldCoupon, WalletEntry
from couponcore.domain.reservation import PendingReservation, ResendRecord, ReservationMessage, ReserveOutcome
from couponcore.metrics import MetricSpec

Clock = Callable[[], datetime]


# ---- MySQL: the unit of work and its repositories ----


class CouponRepository(Protocol):
    def add(self, coupon: NewCoupon, now: datetime) -> int: ...
    def get(self, coupon_id: int) -> Coupon | None: ...
    def async_windows(self) -> list[tuple[int, datetime]]:
        """Every ASYNC coupon with the end of its window."""
        ...


class IssueRepository(Protocol):
    def users_of(self, coupon_id: int) -> set[int]: ...
    def find(self, coupon_id: int, user_id: int) -> HeldCoupon | None: ...
    def wallet(self, user_id: int, before: tuple[datetime, int] | None, limit: int) -> list[WalletEntry]:
        """The user's issues older than ``before`` (a previous entry's position), newest first."""
        ...

    def was_rejected(self, coupon_id: int, user_id: int) -> bool: ...


@dataclass(frozen=True, slots=True)
class UseWrite:
    changed: bool  # this call's conditional write changed the row
    held: HeldCoupon | None  # the issue as it is after it (None: MySQL holds no such issue)


@dataclass(frozen=True, slots=True)
class SyncIssueOutcome:
    coupon_before: Coupon | None  # the row as locked, before this issue; None: no such coupon
    inserted: bool  # the issue was written and committed


class UnitOfWork(Protocol):
    """One transaction. Events raised in it are published after it commits (and after its connection is
    back in the pool); an uncommitted transaction is rolled back at the end of the block."""

    @property
    def coupons(self) -> CouponRepository: ...
    @property
    def issues(self) -> IssueRepository: ...
    def __enter__(self) -> Self: ...
    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    def commit(self) -> None: ...
    def raise_event(self, event: DomainEvent) -> None: ...
    def issue_sync_and_commit(self, coupon_id: int, user_id: int, now: datetime) -> SyncIssueOutcome:
        """V1 in one round trip: lock the coupon row, insert the issue if the quantity, window and mode
        rules allow (mirroring the domain's), count it, and commit."""
        ...

    def lock_for_persist(self, coupon_id: int, user_ids: Sequence[int]) -> tuple[Coupon | None, set[int]]:
        """In one round trip: the coupon with its row locked until the transaction ends, and which of these
        users it has issued already."""
        ...

    def persist_and_commit(
        self,
        coupon_id: int,
        issues: Sequence[tuple[int, datetime, datetime | None]],
        refused: Sequence[int],
        now: datetime,
    ) -> None:
        """In one round trip: record the refusals for good, write the (user, issued at, expires at) issues,
        count them on the coupon, commit."""
        ...

    def redeem_and_commit(self, coupon_id: int, user_id: int, order_id: str, now: datetime) -> UseWrite:
        """In one round trip: mark the issue used by ``order_id`` if it is unused and unexpired at ``now``,
        read it back, commit."""
        ...

    def restore_and_commit(self, coupon_id: int, user_id: int, order_id: str, now: datetime) -> UseWrite:
        """In one round trip: give the issue back if ``order_id`` uses it, read it back, commit."""
        ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


# ---- Redis: the seats of ASYNC coupons, and the V1-async lock ----


@dataclass(frozen=True, slots=True)
class IssuedFacts:
    """What does not change about an issue MySQL holds, kept in Redis so that status polls need no MySQL."""

    issued_at_us: int  # epoch µs
    expire_at_us: int | None  # epoch µs; None: it never expires


@dataclass(frozen=True, slots=True)
class SeatState:
    """What the seat store knows of one user's reservation of one coupon."""

    holds_seat: bool
    rejected: bool  # MySQL refused the reservation (older versions kept the refusal only here)
    counted: bool  # the coupon's seat state is known complete (False after Redis lost it, until rebuilt)
    pending: bool = False  # reserved and not yet confirmed in MySQL
    # MySQL holds the issue, unused when this was kept; None: not kept, or its use changed since (ask MySQL).
    issued: IssuedFacts | None = None


class SeatStore(Protocol):
    """The hot path's seats: what an issue request and the status route ask of them."""

    def reserve(self, seat: PendingReservation, total: int | None, *, fair_share_per_s: int = 0) -> ReserveOutcome:
        """Atomically decide by ``reserve_outcome`` and, if reserved, hold the seat and keep it pending. With
        ``fair_share_per_s``, first count the request toward the user's fair share (OVER_FAIR_SHARE past it)."""
        ...

    def release(self, seat: PendingReservation, *, rejected: bool = False) -> bool:
        """Give the seat back while it is still this reservation's (its token); with ``rejected``, remember
        the refusal. Returns whether it was given back."""
        ...

    def holds_seat(self, coupon_id: int, user_id: int) -> bool: ...
    def seats_taken(self, coupon_id: int) -> int: ...
    def reservation_state(self, coupon_id: int, user_id: int) -> SeatState:
        """Everything the status route asks, in one round trip."""
        ...

    def remember_issued(self, coupon_id: int, user_id: int, facts: IssuedFacts) -> None:
        """MySQL holds this issue, unused: the next status request needs no MySQL (unless its use changed
        meanwhile: see ``forget_issued``)."""
        ...

    def forget_issued(self, coupon_id: int, user_id: int) -> None:
        """This issue's use is about to change in MySQL: from now on the status route reads it there, and no
        later ``remember_issued`` or confirmation restores the kept facts."""
        ...


class SeatLedger(Protocol):
    """The seats as batch_persist and reconciliation keep them in step with MySQL, and rebuild them."""

    def confirm_persisted(
        self, coupon_id: int, user_ids: Iterable[int], issued: Mapping[int, IssuedFacts] | None = None
    ) -> int:
        """MySQL holds these issues: no longer pending (their seats stay taken), no more resends; the facts
        of those in ``issued`` are kept for the status route. Returns how many of them held no seat
        here: Redis lost them."""
        ...

    def forget_count(self, coupon_id: int, now_ms: int) -> bool:
        """The seat state is found incomplete: nothing is sold from it until it is rebuilt. Returns whether it
        was counted until now (False: already paused)."""
        ...

    def loss_seen_at(self, coupon_id: int, now_ms: int) -> int | None:
        """None while the state is counted; else when it was first found incomplete (epoch ms)."""
        ...

    def uncounted(self, coupon_ids: Sequence[int]) -> list[int]: ...
    def rebuild(self, coupon_id: int, issued_users: Iterable[int], epoch_ms: int) -> int | None:
        """The seats become MySQL's issues plus what is still pending here, and the state is counted again.
        Returns when the loss was first seen (0: never), or None if another process rebuilt it first."""
        ...

    def restore_seats(self, coupon_id: int, user_ids: Iterable[int]) -> int:
        """Put persisted issues back among the seat holders (after Redis lost data); returns how many."""
        ...

    def pending(self, coupon_id: int) -> list[PendingReservation]: ...
    def seat_holders(self, coupon_id: int) -> set[int]: ...
    def with_pending(self, coupon_ids: Sequence[int]) -> list[int]: ...
    def let_expire(self, coupon_ids: Sequence[int], after_s: int) -> None:
        """A settled coupon's seats expire (once: a key that already expires keeps its time)."""
        ...

    def resend_records(self, coupon_id: int, user_ids: Sequence[int]) -> dict[int, ResendRecord]: ...
    def record_resends(self, coupon_id: int, user_ids: Sequence[int], now_ms: int) -> None:
        """Count one more resend of each, atomically (two passes never lose a count)."""
        ...


class LockNotAcquiredError(Exception):
    """The lock was not had within the wait time."""


class FairShare(Protocol):
    """At most ``per_second`` issue requests per user and coupon each second (0: no limit)."""

    per_second: int

    def admit(self, coupon_id: int, user_id: int) -> bool:
        """Count this request; False once the user is over the fair share this second."""
        ...


class CouponLock(Protocol):
    def hold(self, coupon_id: int, wait_s: float) -> AbstractContextManager[float]:
        """Hold the coupon's lock for the block (yielding the seconds waited); raises LockNotAcquiredError."""
        ...


class PassLock(Protocol):
    def exclusive(self) -> AbstractContextManager[bool]:
        """Holds the one lock of a repeated job (a reconcile pass) for the block, yielding whether it was had;
        never waits: a pass already running makes this one unnecessary."""
        ...


# ---- The coupon cache, the queue, metrics ----


@dataclass(frozen=True, slots=True)
class CachedCoupon:
    coupon: Coupon
    sold_out: bool  # no seat left when cached (ended is read from the coupon's own window)


class CouponReader(Protocol):
    """Reads of committed coupons, outside any unit of work (what the catalog loads from)."""

    def get(self, coupon_id: int) -> Coupon | None: ...
    def highest_id(self) -> int:
        """The largest coupon id there is (0 with none): ids above it need no lookup."""
        ...


class CouponCatalog(Protocol):
    def get(self, coupon_id: int) -> CachedCoupon | None: ...
    def mark_sold_out(self, coupon_id: int) -> None: ...
    def refresh(self, coupon_id: int) -> CachedCoupon | None:
        """Reload what the issue rules read (after a commit that changed it)."""
        ...

    def forget_sold_out(self, coupon_id: int) -> None:
        """A seat was given back: a cached "sold out" must not outlive it (the next request reloads)."""
        ...


class IssueQueue(Protocol):
    @property
    def worst_case_s(self) -> float:
        """The longest one send can take before it gives up."""
        ...

    def prepare_send(self) -> None:
        """Has what a send needs besides the call (the signing key), so nothing slow follows a reservation."""
        ...

    def send(self, message: ReservationMessage) -> None:
        """Raises DependencyUnavailableError when the message surely did not arrive, OutcomeUnknownError
        when it may have."""
        ...

    def holds_nothing(self) -> bool:
        """No message waiting, in flight or delayed: everything sent so far was processed (or dead-lettered)."""
        ...

    def send_many(self, messages: list[ReservationMessage]) -> None: ...


class MetricsSink(Protocol):
    def count(self, spec: MetricSpec, value: float = 1, **labels: str) -> None: ...
    def observe(self, spec: MetricSpec, value: float, **labels: str) -> None: ...
    def set_gauge(self, spec: MetricSpec, value: float, **labels: str) -> None: ...
