"""Redis key names. Every key of one coupon shares the hash tag ``{<couponId>}`` so a Lua script that
touches them all runs on one slot (ElastiCache cluster mode and Serverless require it)."""

from __future__ import annotations


def reserved_users(coupon_id: int) -> str:
    """Set of user ids holding a seat of an ASYNC coupon (persisted or not yet)."""
    return f"coupon:{{{coupon_id}}}:reserved"
