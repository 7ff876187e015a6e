"""A MySQL unit of work: one connection, one transaction, events published only after commit and only
once the connection is back in the pool (a Lambda container has a pool of one: the after-commit work,
such as a cache refresh that reads MySQL, needs it)."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy import Connection, Engine

from couponcore.adapters.repositories import BatchIssueRepository, CouponRepository, IssueRepository
from couponcore.domain.events import DomainEvent
from couponcore.events import EventBus


class SqlUnitOfWork:
    coupons: CouponRepository
    issues: IssueRepository
    batch: BatchIssueRepository

    def __init__(self, engine: Engine, bus: EventBus) -> None:
        self._engine = engine
        self._bus = bus
        self._connection: Connection | None = None
        self._events: list[DomainEvent] = []
        self._committed: list[DomainEvent] = []

    def __enter__(self) -> SqlUnitOfWork:
        self._connection = self._engine.connect()
        self._events, self._committed = [], []
        self.coupons = CouponRepository(self._connection)
        self.issues = IssueRepository(self._connection)
        self.batch = BatchIssueRepository(self._connection)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._connection is not None
        try:
            if self._connection.in_transaction():  # uncommitted work, or a read: end it here
                self._connection.rollback()
        finally:
            self._connection.close()
            self._connection = None
        committed, self._committed = self._committed, []
        self._bus.publish_all(committed)

    def raise_event(self, event: DomainEvent) -> None:
        self._events.append(event)

    def commit(self) -> None:
        assert self._connection is not None
        self._connection.commit()
        self._committed += self._events
        self._events = []
