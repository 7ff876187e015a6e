"""MySQL repositories. They run inside a unit of work's connection and never commit on their own,
except the V1 issue, whose COMMIT rides in its single round trip (see ``SYNC_ISSUE_BATCH``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pymysql.err
from sqlalchemy import Connection, insert, select, update

from couponcore.adapters.tables import coupon_issues, coupon_rejections, coupons
from couponcore.domain.clock import utc_now
from couponcore.domain.coupon import Coupon, CouponType, Issue, IssueMode, NewCoupon

_COUPON_COLUMNS = (
    "id, title, coupon_type, total_quantity, issued_quantity, discount_amount, min_available_amount, "
    "date_issue_start, date_issue_end, issue_mode"
)


class CouponRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def add(self, coupon: NewCoupon, now: datetime) -> int:
        result = self._connection.execute(
            insert(coupons).values(
                title=coupon.title,
                coupon_type=CouponType.FIRST_COME_FIRST_SERVED.value,
                total_quantity=coupon.total_quantity,
                issued_quantity=0,
                discount_amount=coupon.discount_amount,
                min_available_amount=coupon.min_available_amount,
                date_issue_start=coupon.date_issue_start,
                date_issue_end=coupon.date_issue_end,
                issue_mode=coupon.issue_mode.value,
                date_created=now,
                date_updated=now,
            )
        )
        primary_key = result.inserted_primary_key
        assert primary_key is not None
        return int(primary_key[0])

    def get(self, coupon_id: int) -> Coupon | None:
        row = self._connection.execute(select(coupons).where(coupons.c.id == coupon_id)).mappings().first()
        return Coupon.from_fields(row) if row else None

    def async_windows(self) -> list[tuple[int, datetime]]:
        """Every ASYNC coupon with the end of its window: what reconciliation looks after."""
        rows = self._connection.execute(
            select(coupons.c.id, coupons.c.date_issue_end).where(coupons.c.issue_mode == IssueMode.ASYNC.value)
        )
        return [(int(row.id), row.date_issue_end) for row in rows]


# The whole V1 transaction in one round trip, so the hot row lock is held only for the server's own
# work, never for a client round trip (the lock hold time is what bounds V1, see the README).
# The INSERT's WHERE mirrors Coupon.check_issue_mode/check_issuable, evaluated on the row locked just
# above; the Python rules then name the outcome from that same snapshot. tests/integration checks that
# both agree on every edge of the window and the quantity.
SYNC_ISSUE_BATCH = f"""
SELECT {_COUPON_COLUMNS} FROM coupons WHERE id = %(coupon_id)s FOR UPDATE;
INSERT IGNORE INTO coupon_issues (coupon_id, user_id, date_issued, date_created, date_updated)
  SELECT id, %(user_id)s, %(now)s, %(now)s, %(now)s FROM coupons
  WHERE id = %(coupon_id)s AND issue_mode = 'SYNC'
    AND (total_quantity IS NULL OR issued_quantity < total_quantity)
    AND date_issue_start < %(now)s AND %(now)s < date_issue_end;
UPDATE coupons SET issued_quantity = issued_quantity + 1, date_updated = %(now)s
  WHERE id = %(coupon_id)s AND ROW_COUNT() > 0;
SELECT ROW_COUNT() AS inserted;
COMMIT
"""  # noqa: S608 - the only interpolation is a constant column list; every value is a bound parameter
# No user variables and no session SET: each would pin the connection behind RDS Proxy. ROW_COUNT() in
# the UPDATE is the INSERT's count; the last SELECT's is the UPDATE's, 1 exactly when the issue was written.


@dataclass(frozen=True, slots=True)
class SyncIssueResult:
    coupon_before: Coupon | None  # the row as locked, before this issue
    inserted: bool


class IssueRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def users_of(self, coupon_id: int) -> set[int]:
        return set(
            self._connection.execute(
                select(coupon_issues.c.user_id).where(coupon_issues.c.coupon_id == coupon_id)
            ).scalars()
        )

    def find(self, coupon_id: int, user_id: int) -> Issue | None:
        row = self._connection.execute(
            select(coupon_issues.c.coupon_id, coupon_issues.c.user_id, coupon_issues.c.date_issued).where(
                coupon_issues.c.coupon_id == coupon_id, coupon_issues.c.user_id == user_id
            )
        ).first()
        return Issue(coupon_id=row.coupon_id, user_id=row.user_id, date_issued=row.date_issued) if row else None

    def was_rejected(self, coupon_id: int, user_id: int) -> bool:
        """Whether MySQL refused this user's reservation for good (see coupon_rejections)."""
        found = self._connection.execute(
            select(coupon_rejections.c.user_id).where(
                coupon_rejections.c.coupon_id == coupon_id, coupon_rejections.c.user_id == user_id
            )
        ).first()
        return found is not None

    def issue_sync_and_commit(self, coupon_id: int, user_id: int, now: datetime) -> SyncIssueResult:
        """Lock the coupon row, insert the issue if the rules allow, count it and commit: one round trip."""
        dbapi_connection = self._connection.connection
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(SYNC_ISSUE_BATCH, {"coupon_id": coupon_id, "user_id": user_id, "now": now})
            columns = [d[0] for d in cursor.description or ()]
            locked = cursor.fetchone()
            last = None
            while cursor.nextset():  # INSERT, UPDATE, the count, COMMIT
                if cursor.description:
                    last = cursor.fetchone()
        except Exception as error:
            self._end_failed_batch(error, dbapi_connection, cursor)
            raise
        finally:
            cursor.close()
        coupon = Coupon.from_fields(dict(zip(columns, locked, strict=True))) if locked else None
        return SyncIssueResult(coupon_before=coupon, inserted=bool(last and last[0]))

    def _end_failed_batch(self, error: Exception, dbapi_connection: Any, cursor: Any) -> None:
        """The batch stopped before its COMMIT, on the raw cursor SQLAlchemy does not watch: end the
        transaction it does not know was open, or, if the connection is gone, tell the pool so (the pool of
        one would otherwise hand the dead connection to every following request)."""
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


@dataclass(frozen=True, slots=True)
class PersistResult:
    inserted: list[int]  # users whose issue this transaction wrote
    already_issued: list[int]  # users MySQL already held (a redelivered message)
    refused: list[int]  # users MySQL refused for good: no seat left, or no such ASYNC coupon
    sold_out: bool  # the coupon has no seat left after this transaction


class BatchIssueRepository:
    """batch_persist's writes: one transaction per coupon, the coupon row locked once."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def persist(self, coupon_id: int, reservations: list[tuple[int, datetime]]) -> PersistResult:
        """Insert the issues of (user, reserved at) in first-come order, never beyond total_quantity."""
        users = [user for user, _ in reservations]
        row = self._connection.execute(
            select(coupons.c.total_quantity, coupons.c.issued_quantity, coupons.c.issue_mode)
            .where(coupons.c.id == coupon_id)
            .with_for_update()
        ).first()
        if row is None or row.issue_mode != IssueMode.ASYNC.value:
            return PersistResult([], [], users, sold_out=False)
        existing: set[int] = set(
            self._connection.execute(
                select(coupon_issues.c.user_id).where(
                    coupon_issues.c.coupon_id == coupon_id, coupon_issues.c.user_id.in_(users)
                )
            ).scalars()
        )
        fresh: dict[int, datetime] = {}
        for user, at in sorted(reservations, key=lambda r: r[1]):  # first come, first served
            if user not in existing and user not in fresh:
                fresh[user] = at
        room = len(fresh) if row.total_quantity is None else max(0, row.total_quantity - row.issued_quantity)
        ordered = list(fresh.items())
        accepted, refused = ordered[:room], ordered[room:]
        if refused:
            # Final, and recorded with the decision: the status route reads it whatever Redis still knows.
            self._connection.execute(
                insert(coupon_rejections).prefix_with("IGNORE"),
                [{"coupon_id": coupon_id, "user_id": user, "date_rejected": utc_now()} for user, _ in refused],
            )
        if accepted:
            now = utc_now()
            # Straight to the driver with tuples: PyMySQL folds them into one multi-row INSERT.
            cursor = self._connection.connection.cursor()
            try:
                cursor.executemany(
                    "INSERT INTO coupon_issues (coupon_id, user_id, date_issued, date_created, date_updated) "
                    "VALUES (%s, %s, %s, %s, %s)",
                    [(coupon_id, user, at, now, now) for user, at in accepted],
                )
            finally:
                cursor.close()
            self._connection.execute(
                update(coupons)
                .where(coupons.c.id == coupon_id)
                .values(issued_quantity=coupons.c.issued_quantity + len(accepted), date_updated=now)
            )
        issued_after = row.issued_quantity + len(accepted)
        sold_out = row.total_quantity is not None and issued_after >= row.total_quantity
        return PersistResult([u for u, _ in accepted], sorted(existing), [u for u, _ in refused], sold_out)
