"""coupons and coupon_issues

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import DATETIME

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_TABLE_OPTIONS = {"mysql_engine": "InnoDB", "mysql_charset": "utf8mb4"}


def upgrade() -> None:
    op.create_table(
        "coupons",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(255), nullable=False),
        sa.Column("coupon_type", sa.String(32), nullable=False),
        sa.Column("total_quantity", sa.Integer, nullable=True),
        sa.Column("issued_quantity", sa.Integer, nullable=False, server_default="0"),
        sa.Column("discount_amount", sa.Integer, nullable=False),
        sa.Column("min_available_amount", sa.Integer, nullable=False),
        sa.Column("date_issue_start", DATETIME(fsp=6), nullable=False),
        sa.Column("date_issue_end", DATETIME(fsp=6), nullable=False),
        sa.Column("issue_mode", sa.String(8), nullable=False),
        sa.Column("date_created", DATETIME(fsp=6), nullable=False),
        sa.Column("date_updated", DATETIME(fsp=6), nullable=False),
        **_TABLE_OPTIONS,
    )
    op.create_table(
        "coupon_issues",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("coupon_id", sa.BigInteger, sa.ForeignKey("coupons.id"), nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("date_issued", DATETIME(fsp=6), nullable=False),
        sa.Column("date_used", DATETIME(fsp=6), nullable=True),
        sa.Column("date_created", DATETIME(fsp=6), nullable=False),
        sa.Column("date_updated", DATETIME(fsp=6), nullable=False),
        sa.UniqueConstraint("coupon_id", "user_id", name="uq_coupon_issues_coupon_user"),
        **_TABLE_OPTIONS,
    )


def downgrade() -> None:
    op.drop_table("coupon_issues")
    op.drop_table("coupons")
