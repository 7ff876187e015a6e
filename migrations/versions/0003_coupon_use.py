"""Using a coupon: its expiry, the order using it, the wallet's index

Coupon events gain expires_in_days and date_use_end; issues gain date_expire (computed at issue), order_id
and restored_order_id beside the existing date_used. Every new column is nullable: rows issued before this
migration never expire and are unused, which is what they were.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.mysql import DATETIME

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("coupons", sa.Column("expires_in_days", sa.Integer, nullable=True))
    op.add_column("coupons", sa.Column("date_use_end", DATETIME(fsp=6), nullable=True))
    op.add_column("coupon_issues", sa.Column("date_expire", DATETIME(fsp=6), nullable=True))
    op.add_column("coupon_issues", sa.Column("order_id", sa.String(64), nullable=True))
    op.add_column("coupon_issues", sa.Column("restored_order_id", sa.String(64), nullable=True))
    # The wallet, newest first: one range read of this index per page, however many coupons the user holds.
    op.create_index("ix_coupon_issues_user_issued", "coupon_issues", ["user_id", "date_issued", "id"])


def downgrade() -> None:
    op.drop_index("ix_coupon_issues_user_issued", table_name="coupon_issues")
    for column in ("restored_order_id", "order_id", "date_expire"):
        op.drop_column("coupon_issues", column)
    op.drop_column("coupons", "date_use_end")
    op.drop_column("coupons", "expires_in_days")
