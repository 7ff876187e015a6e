"""Direct reads of MySQL, to check what the API says against what is stored."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from couponcore.bootstrap import services


def _scalar(sql: str, **params: Any) -> int:
    with services().adapters.engine.connect() as connection:
        return int(connection.execute(text(sql), params).scalar_one())


def issued_quantity(coupon_id: int) -> int:
    return _scalar("SELECT issued_quantity FROM coupons WHERE id = :id", id=coupon_id)


def issue_rows(coupon_id: int) -> int:
    return _scalar("SELECT COUNT(*) FROM coupon_issues WHERE coupon_id = :id", id=coupon_id)


def issued_users(coupon_id: int) -> list[int]:
    with services().adapters.engine.connect() as connection:
        rows = connection.execute(text("SELECT user_id FROM coupon_issues WHERE coupon_id = :id"), {"id": coupon_id})
        return [int(row[0]) for row in rows]
