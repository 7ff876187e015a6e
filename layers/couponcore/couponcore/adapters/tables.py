"""The MySQL schema as SQLAlchemy Core tables; migrations/ creates it, the repositories query it."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
)
from sqlalchemy.dialects.mysql import DATETIME

metadata = MetaData()

coupons = Table(
    "coupons",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("title", String(255), nullable=False),
    Column("coupon_type", String(32), nullable=False),
    Column("total_quantity", Integer, nullable=True),  # NULL = unlimited
    Column("issued_quantity", Integer, nullable=False, server_default="0"),
    Column("discount_amount", Integer, nullable=False),
    Column("min_available_amount", Integer, nullable=False),
    Column("date_issue_start", DATETIME(fsp=6), nullable=False),
    Column("date_issue_end", DATETIME(fsp=6), nullable=False),
    Column("issue_mode", String(8), nullable=False),
    Column("expires_in_days", Integer, nullable=True),
    Column("date_use_end", DATETIME(fsp=6), nullable=True),
    Column("date_created", DATETIME(fsp=6), nullable=False),
    Column("date_updated", DATETIME(fsp=6), nullable=False),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

coupon_issues = Table(
    "coupon_issues",
    metadata,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("coupon_id", BigInteger, ForeignKey("coupons.id"), nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("date_issued", DATETIME(fsp=6), nullable=False),
    Column("date_expire", DATETIME(fsp=6), nullable=True),  # NULL: never expires
    Column("date_used", DATETIME(fsp=6), nullable=True),
    Column("order_id", String(64), nullable=True),  # the order using it (with date_used)
    Column("restored_order_id", String(64), nullable=True),  # the last order that gave it back
    Column("date_created", DATETIME(fsp=6), nullable=False),
    Column("date_updated", DATETIME(fsp=6), nullable=False),
    # One issue per user and coupon, enforced by the database; it also serves every lookup by coupon.
    UniqueConstraint("coupon_id", "user_id", name="uq_coupon_issues_coupon_user"),
    # The wallet pages through this, newest first.
    Index("ix_coupon_issues_user_issued", "user_id", "date_issued", "id"),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)

# Reservations MySQL refused for good (the coupon was full when they arrived), written in the transaction
# that refuses them: the status route answers REJECTED from here even after Redis lost everything.
coupon_rejections = Table(
    "coupon_rejections",
    metadata,
    Column("coupon_id", BigInteger, ForeignKey("coupons.id"), primary_key=True),
    Column("user_id", BigInteger, primary_key=True),
    Column("date_rejected", DATETIME(fsp=6), nullable=False),
    mysql_engine="InnoDB",
    mysql_charset="utf8mb4",
)
