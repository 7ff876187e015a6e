"""Domain events, published only after the transaction that caused them commits."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CouponIssueCompleted:
    """The coupon became sold out (the seed's ``CouponIssueCompleteEvent``): caches must learn it."""

    coupon_id: int


@dataclass(frozen=True, slots=True)
class CouponChanged:
    """A coupon was created or changed by an admin."""

    coupon_id: int


@dataclass(frozen=True, slots=True)
class SeatsReleased:
    """Seats of a coupon were given back in Redis (a failed send, a rejection): it may be available again."""

    coupon_id: int


DomainEvent = CouponIssueCompleted | CouponChanged | SeatsReleased
