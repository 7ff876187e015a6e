"""The UnitOfWork port on MySQL: one connection, one transaction, MySQL's errors translated.

Events raised in it are published after commit, and only once the connection is back in the pool (a
Lambda container has a pool of one: the after-commit work, such as a cache refresh that reads MySQL,
needs it). V1's issue is one round trip that decides, writes and commits (``issue_sync_and_commit``);
events raised after it describe a committed transaction and are published the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import TracebackType
from typing import Any

import pymysql.err
from sqlalchemy import Connection, Engine

from couponcore.adapters.repositories import (
    HELD_COLUMNS,
    MYSQL_UNAVAILABLE,
    CouponRepository,
    IssueRepository,
    held_coupon,
)
from couponcore.domain.coupon import Coupon
from couponcore.domain.errors import DependencyUnavailableError
from couponcore.domain.events import DomainEvent
from couponcore.services.message_bus import EventBus
from couponcore.services.ports import SyncIssueOutcome, UseWrite

_COUPON_COLUMNS = (
    "id, title, coupon_type, total_quantity, issued_quantity, discount_amount, min_available_amount, "
    "date_issue_start, date_issue_end, issue_mode, expires_in_days, date_use_end"
)
_HELD_COLUMNS = ", ".join(column.name for column in HELD_COLUMNS)

# The whole V1 transaction in one round trip, so the hot row lock is held only for the server's own
# work, never for a client round trip (the lock hold time is what bounds V1, see docs/design.md).
# The INSERT's WHERE mirrors the domain's mode, quantity and window rules (Coupon), and its date_expire the
# domain's ``expiry_of``, evaluated on the row locked just above; the service then names the outcome from that
# same snapshot with the domain's rules.
# tests/integration/test_sync_rules_agree.py checks that both agree on every edge.
SYNC_ISSUE_BATCH = f"""
SELECT {_COUPON_COLUMNS} FROM coupons WHERE id = %(coupon_id)s FOR UPDATE;
INSERT IGNORE INTO coupon_issues (coupon_id, user_id, date_issued, date_expire, date_created, date_updated)
  SELECT id, %(user_id)s, %(now)s,
    CASE WHEN expires_in_days IS NULL THEN date_use_end
      WHEN date_use_end IS NULL THEN %(now)s + INTERVAL expires_in_days DAY
      ELSE LEAST(%(now)s + INTERVAL expires_in_days DAY, date_use_end) END,
    %(now)s, %(now)s FROM coupons
  WHERE id = %(coupon_id)s AND issue_mode = 'SYNC'
    AND (total_quantity IS NULL OR issued_quantity < total_quantity)
    AND date_issue_start < %(now)s AND %(now)s < date_issue_end;
UPDATE coupons SET issued_quantity = issued_quantity + 1, date_updated = %(now)s
  WHERE id = %(coupon_id)s AND CASE WHEN ROW_COUNT() >= 0 THEN ROW_COUNT() > 0
    ELSE EXISTS (SELECT 1 FROM coupon_issues
      WHERE coupon_id = %(coupon_id)s AND user_id = %(user_id)s AND date_issued = %(now)s) END;
SELECT ROW_COUNT() AS inserted;
COMMIT
"""  # noqa: S608 - the only interpolation is a constant column list; every value is a bound parameter
# No user variables and no session SET: each would pin the connection behind RDS Proxy. ROW_COUNT() in
# the UPDATE is the INSERT's count; the last SELECT's is the UPDATE's, 1 exactly when the issue was written.
# When the server could not send the INSERT's answer (the client's connection was cut), it goes on with the
# batch, COMMIT included, but ROW_COUNT() reads -1: the UPDATE then looks for this request's own row (its
# user and timestamp), or a committed issue would go uncounted (tests/integration/test_deployed_configuration.py
# cuts the connections of a V1 sale until it happens).

# batch_persist's reads in one round trip: the coupon row locked (until the write batch's COMMIT), and which
# of the batch's users it has issued already.
PERSIST_READ_BATCH = f"""
SELECT {_COUPON_COLUMNS} FROM coupons WHERE id = %(coupon_id)s FOR UPDATE;
SELECT user_id FROM coupon_issues WHERE coupon_id = %(coupon_id)s AND user_id IN %(users)s
"""  # noqa: S608 - constant column list; every value is a bound parameter
_REJECTIONS = "INSERT IGNORE INTO coupon_rejections (coupon_id, user_id, date_rejected) VALUES "
_ISSUES = "INSERT INTO coupon_issues (coupon_id, user_id, date_issued, date_expire, date_created, date_updated) VALUES "
_COUNT = "UPDATE coupons SET issued_quantity = issued_quantity + %s, date_updated = %s WHERE id = %s"

# Redemption and its cancel: one conditional write on the issue's own row (never the coupon's, so a sale's hot
# row lock is not touched), the row as it is afterwards, and the commit, in one round trip. The UPDATE's WHERE
# mirrors HeldCoupon's rules (unused, unexpired; the amount is checked against the coupon's terms before); when
# it changes nothing, the row read after it says why. Two orders racing for one row: the second UPDATE waits
# for the first's commit, then finds the coupon used.
REDEEM_BATCH = f"""
UPDATE coupon_issues SET date_used = %(now)s, order_id = %(order_id)s, date_updated = %(now)s
  WHERE coupon_id = %(coupon_id)s AND user_id = %(user_id)s AND date_used IS NULL
    AND (date_expire IS NULL OR %(now)s < date_expire);
SELECT {_HELD_COLUMNS} FROM coupon_issues WHERE coupon_id = %(coupon_id)s AND user_id = %(user_id)s;
COMMIT
"""  # noqa: S608 - constant column list; every value is a bound parameter
RESTORE_BATCH = f"""
UPDATE coupon_issues SET date_used = NULL, order_id = NULL, restored_order_id = %(order_id)s, date_updated = %(now)s
  WHERE coupon_id = %(coupon_id)s AND user_id = %(user_id)s AND order_id = %(order_id)s AND date_used IS NOT NULL;
SELECT {_HELD_COLUMNS} FROM coupon_issues WHERE coupon_id = %(coupon_id)s AND user_id = %(user_id)s;
COMMIT
"""  # noqa: S608 - constant column list; every value is a bound parameter


class SqlUnitOfWork:
    coupons: CouponRepository
    issues: IssueRepository

    def __init__(self, engine: Engine, bus: EventBus) -> None:
        self._engine = engine
        self._bus = bus
        self._connection: Connection | None = None
        self._events: list[DomainEvent] = []
        self._committed: list[DomainEvent] = []
        self._after_commit = False
        self._raw_transaction = False

    def __enter__(self) -> SqlUnitOfWork:
        try:
            self._connection = self._engine.connect()
        except MYSQL_UNAVAILABLE as error:
            raise DependencyUnavailableError("mysql", error) from error
        self._events, self._committed, self._after_commit = [], [], False
        self._raw_transaction = False
        self.coupons = CouponRepository(self._connection)
        self.issues = IssueRepository(self._connection)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._connection is not None
        try:
            if self._raw_transaction:  # a persist batch's lock taken and not committed
                self._connection.connection.rollback()
                self._raw_transaction = False
            if self._connection.in_transaction():  # uncommitted work, or a read: end it here
                self._connection.rollback()
        except MYSQL_UNAVAILABLE:
            pass  # the connection is gone; the server rolls back what it held
        finally:
            self._connection.close()
            self._connection = None
        committed, self._committed = self._committed, []
        self._bus.publish_all(committed)
        if isinstance(exc, MYSQL_UNAVAILABLE):
            raise DependencyUnavailableError("mysql", exc) from exc

    def raise_event(self, event: DomainEvent) -> None:
        (self._committed if self._after_commit else self._events).append(event)

    def commit(self) -> None:
        assert self._connection is not None
        self._connection.commit()
        self._committed += self._events
        self._events = []

    def issue_sync_and_commit(self, coupon_id: int, user_id: int, now: datetime) -> SyncIssueOutcome:
        with self._batch_cursor() as cursor:
            cursor.execute(SYNC_ISSUE_BATCH, {"coupon_id": coupon_id, "user_id": user_id, "now": now})
            columns = [d[0] for d in cursor.description or ()]
            locked = cursor.fetchone()
            last = None
            while cursor.nextset():  # INSERT, UPDATE, the count, COMMIT
                if cursor.description:
                    last = cursor.fetchone()
        self._after_commit = True
        coupon = Coupon.from_fields(dict(zip(columns, locked, strict=True))) if locked else None
        return SyncIssueOutcome(coupon_before=coupon, inserted=bool(last and last[0]))

    def lock_for_persist(self, coupon_id: int, user_ids: Sequence[int]) -> tuple[Coupon | None, set[int]]:
        with self._batch_cursor() as cursor:
            cursor.execute(PERSIST_READ_BATCH, {"coupon_id": coupon_id, "users": tuple(user_ids)})
            # From here the transaction is on the raw connection, which SQLAlchemy does not watch: it is
            # ended by persist_and_commit, or at the end of the block (__exit__).
            self._raw_transaction = True
            columns = [d[0] for d in cursor.description or ()]
            locked = cursor.fetchone()
            cursor.nextset()
            already = {int(row[0]) for row in cursor.fetchall()}
        return (Coupon.from_fields(dict(zip(columns, locked, strict=True))) if locked else None), already

    def persist_and_commit(
        self,
        coupon_id: int,
        issues: Sequence[tuple[int, datetime, datetime | None]],
        refused: Sequence[int],
        now: datetime,
    ) -> None:
        statements: list[str] = []
        values: list[Any] = []
        if refused:
            statements.append(_REJECTIONS + ", ".join(["(%s, %s, %s)"] * len(refused)))
            values += [value for user in refused for value in (coupon_id, user, now)]
        if issues:
            statements.append(_ISSUES + ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(issues)))
            values += [value for user, at, expire in issues for value in (coupon_id, user, at, expire, now, now)]
            statements.append(_COUNT)
            values += [len(issues), now, coupon_id]
        with self._batch_cursor() as cursor:
            cursor.execute(";\n".join([*statements, "COMMIT"]), values)
            while cursor.nextset():
                pass
        self._raw_transaction = False
        self._committed += self._events
        self._events = []
        self._after_commit = True

    def redeem_and_commit(self, coupon_id: int, user_id: int, order_id: str, now: datetime) -> UseWrite:
        return self._write_and_read(REDEEM_BATCH, coupon_id, user_id, order_id, now)

    def restore_and_commit(self, coupon_id: int, user_id: int, order_id: str, now: datetime) -> UseWrite:
        return self._write_and_read(RESTORE_BATCH, coupon_id, user_id, order_id, now)

    def _write_and_read(self, batch: str, coupon_id: int, user_id: int, order_id: str, now: datetime) -> UseWrite:
        params = {"coupon_id": coupon_id, "user_id": user_id, "order_id": order_id, "now": now}
        with self._batch_cursor() as cursor:
            cursor.execute(batch, params)
            changed = cursor.rowcount > 0
            cursor.nextset()
            columns = [d[0] for d in cursor.description or ()]
            row = cursor.fetchone()
            while cursor.nextset():  # the COMMIT
                pass
        return UseWrite(changed=changed, held=held_coupon(dict(zip(columns, row, strict=True))) if row else None)

    @contextmanager
    def _batch_cursor(self) -> Iterator[Any]:
        """A cursor on the driver's connection, for the statement batches SQLAlchemy cannot send in one round
        trip; a batch that stops before its COMMIT is ended here."""
        assert self._connection is not None
        dbapi_connection = self._connection.connection
        cursor = dbapi_connection.cursor()
        try:
            yield cursor
        except Exception as error:
            self._end_failed_batch(error, dbapi_connection, cursor)
            raise
        finally:
            cursor.close()

    def _end_failed_batch(self, error: Exception, dbapi_connection: Any, cursor: Any) -> None:
        """The batch stopped before its COMMIT, on the raw cursor SQLAlchemy does not watch: end the
        transaction it does not know was open, or, if the connection is gone, tell the pool so (the pool of
        one would otherwise hand the dead connection to every following request)."""
        assert self._connection is not None
        self._raw_transaction = False  # ended here, one way or the other
        driver_error: Any = error
        if isinstance(error, pymysql.err.Error) and self._connection.dialect.is_disconnect(
            driver_error, dbapi_connection, cursor
        ):
            self._connection.invalidate(error)
            return
        try:
            dbapi_connection.rollback()
        except Exception as rollback_error:
            self._connection.invalidate(rollback_error)
