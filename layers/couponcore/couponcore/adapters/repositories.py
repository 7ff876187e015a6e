"""MySQL repositories. They run inside a unit of work's connection and never commit: the unit of work
does (see adapters/unit_of_work.py)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pymysql.err
import sqlalchemy.exc
from sqlalchemy import (
    Connection,
    DateTime,
    Engine,
    Integer,
    Select,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
)

from couponcore.adapters.driver_errors import translating
from couponcore.adapters.tables import coupon_issues, coupon_rejections, coupons
from couponcore.domain.coupon import Coupon, CouponType, IssueMode, NewCoupon
from couponcore.domain.redemption import HeldCoupon, WalletEntry

# Connection refused or lost, timeouts (including the row lock wait, MySQL error 1205) and a full pool;
# the driver's own classes too, for the V1 batch that runs on the raw DBAPI cursor.
MYSQL_UNAVAILABLE: tuple[type[Exception], ...] = (
    pymysql.err.OperationalError,
    pymysql.err.InterfaceError,
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    sqlalchemy.exc.TimeoutError,
    sqlalchemy.exc.DisconnectionError,
)
on_mysql = translating("mysql", MYSQL_UNAVAILABLE)


class SqlCouponReader:
    """The CouponReader port: committed coupons, each read on a pooled connection of its own (no unit of
    work, so no events: the catalog loads through this while a unit of work may be publishing to it)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    @on_mysql
    def get(self, coupon_id: int) -> Coupon | None:
        with self._engine.connect() as connection:
            return CouponRepository(connection).get(coupon_id)

    @on_mysql
    def highest_id(self) -> int:
        with self._engine.connect() as connection:
            return CouponRepository(connection).highest_id()


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
                expires_in_days=coupon.expires_in_days,
                date_use_end=coupon.date_use_end,
                date_created=now,
                date_updated=now,
            )
        )
        primary_key = result.inserted_primary_key
        assert primary_key is not None
        return int(primary_key[0])

    def highest_id(self) -> int:
        return int(self._connection.execute(select(func.coalesce(func.max(coupons.c.id), 0))).scalar_one())

    def get(self, coupon_id: int) -> Coupon | None:
        row = self._connection.execute(select(coupons).where(coupons.c.id == coupon_id)).mappings().first()
        return Coupon.from_fields(row) if row else None

    def async_windows(self) -> list[tuple[int, datetime]]:
        """Every ASYNC coupon with the end of its window: what reconciliation looks after."""
        rows = self._connection.execute(
            select(coupons.c.id, coupons.c.date_issue_end).where(coupons.c.issue_mode == IssueMode.ASYNC.value)
        )
        return [(int(row.id), row.date_issue_end) for row in rows]


class IssueRepository:
    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def users_of(self, coupon_id: int) -> set[int]:
        return set(
            self._connection.execute(
                select(coupon_issues.c.user_id).where(coupon_issues.c.coupon_id == coupon_id)
            ).scalars()
        )

    def find(self, coupon_id: int, user_id: int) -> HeldCoupon | None:
        row = (
            self._connection.execute(
                select(*HELD_COLUMNS).where(coupon_issues.c.coupon_id == coupon_id, coupon_issues.c.user_id == user_id)
            )
            .mappings()
            .first()
        )
        return held_coupon(row) if row else None

    def wallet(self, user_id: int, before: tuple[datetime, int] | None, limit: int) -> list[WalletEntry]:
        return [
            WalletEntry(held_coupon(row), row["title"], row["discount_amount"], row["min_available_amount"], row["id"])
            for row in self._connection.execute(
                WALLET_PAGES[before is not None], page_values(user_id, before, limit)
            ).mappings()
        ]

    def was_rejected(self, coupon_id: int, user_id: int) -> bool:
        """Whether MySQL refused this user's reservation for good (see coupon_rejections)."""
        found = self._connection.execute(
            select(coupon_rejections.c.user_id).where(
                coupon_rejections.c.coupon_id == coupon_id, coupon_rejections.c.user_id == user_id
            )
        ).first()
        return found is not None


HELD_COLUMNS = (
    coupon_issues.c.coupon_id,
    coupon_issues.c.user_id,
    coupon_issues.c.date_issued,
    coupon_issues.c.date_expire,
    coupon_issues.c.date_used,
    coupon_issues.c.order_id,
    coupon_issues.c.restored_order_id,
)


def _wallet_page(after_cursor: bool) -> Select[Any]:
    """Up to ``limit`` of the user's issues, newest first, older than the cursor (date issued, row id) if
    any: one range read of ix_coupon_issues_user_issued in its order, each coupon's terms joined by its
    primary key (both named, so that no table statistics choose otherwise: a small coupons table would
    otherwise be read first, and the page sorted)."""
    issues = coupon_issues.c
    query = (
        select(*HELD_COLUMNS, issues.id, coupons.c.title, coupons.c.discount_amount, coupons.c.min_available_amount)
        .join_from(coupon_issues, coupons, coupons.c.id == issues.coupon_id)
        .with_hint(coupon_issues, "FORCE INDEX (ix_coupon_issues_user_issued)", "mysql")
        .with_hint(coupons, "FORCE INDEX (PRIMARY)", "mysql")
        .prefix_with("STRAIGHT_JOIN", dialect="mysql")  # the issues first: their index gives the order
        .where(issues.user_id == bindparam("user_id"))
        .order_by(issues.date_issued.desc(), issues.id.desc())
        .limit(bindparam("limit", type_=Integer))
    )
    if after_cursor:
        at, row_id = bindparam("at", type_=DateTime), bindparam("row_id", type_=Integer)
        query = query.where(or_(issues.date_issued < at, and_(issues.date_issued == at, issues.id < row_id)))
    return query


# Built once per container: every wallet read is one of these two statements with its own values.
WALLET_PAGES = {False: _wallet_page(after_cursor=False), True: _wallet_page(after_cursor=True)}


def page_values(user_id: int, before: tuple[datetime, int] | None, limit: int) -> dict[str, Any]:
    values: dict[str, Any] = {"user_id": user_id, "limit": limit}
    if before is not None:
        values["at"], values["row_id"] = before
    return values


def wallet_query(user_id: int, before: tuple[datetime, int] | None, limit: int) -> Select[Any]:
    """The statement of a wallet page with its values bound in (to show its plan)."""
    return WALLET_PAGES[before is not None].params(page_values(user_id, before, limit))


def held_coupon(row: Mapping[Any, Any]) -> HeldCoupon:
    return HeldCoupon(
        coupon_id=row["coupon_id"],
        user_id=row["user_id"],
        date_issued=row["date_issued"],
        date_expire=row["date_expire"],
        date_used=row["date_used"],
        order_id=row["order_id"],
        restored_order_id=row["restored_order_id"],
    )
