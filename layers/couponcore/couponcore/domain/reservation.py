"""A reservation: a seat held in Redis on its way to MySQL, as it travels on the issue queue.

Only the service issues coupons: every message carries a signature over its fields (an HMAC made with a
key only the service's functions can read), and batch_persist persists nothing else. Who is first is
decided by ``reservedAt``, so it is signed too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum

from couponcore.domain.coupon import MAX_ID, quantity_left

LATEST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant MySQL's DATETIME holds


@dataclass(frozen=True, slots=True)
class ReservationMessage:
    """What a reservation carries to batch_persist; the token ties it to its Redis seat."""

    coupon_id: int
    user_id: int
    token: str
    reserved_at_ms: int

    def signed_bytes(self) -> bytes:
        """What the signature covers: every field, in one unambiguous form."""
        return f"reservation/1:{self.coupon_id}:{self.user_id}:{self.token}:{self.reserved_at_ms}".encode()

    def to_json(self, signature: str) -> str:
        return json.dumps(
            {
                "couponId": self.coupon_id,
                "userId": self.user_id,
                "token": self.token,
                "reservedAt": self.reserved_at_ms,
                "signature": signature,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, body: str) -> tuple[ReservationMessage, str]:
        """The reservation and its signature ("" when it has none). Raises ValueError on anything that is
        not a well-formed reservation, so that a bad record fails alone instead of failing the
        transaction of every record of its coupon."""
        data = json.loads(body)
        if not isinstance(data, dict):
            raise ValueError("reservation is not an object")
        fields = (data.get("couponId"), data.get("userId"), data.get("token"), data.get("reservedAt"))
        coupon_id, user_id, token, reserved_at = fields
        if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (coupon_id, user_id, reserved_at)):
            raise ValueError("reservation ids and time must be positive integers")
        if max(coupon_id, user_id) > MAX_ID or reserved_at > LATEST_MS:  # type: ignore[type-var,operator]
            raise ValueError("reservation ids or time out of range")
        if not isinstance(token, str) or not token:
            raise ValueError("reservation token missing")
        signature = data.get("signature", "")
        message = cls(int(coupon_id), int(user_id), token, int(reserved_at))  # type: ignore[arg-type]
        return message, signature if isinstance(signature, str) else ""


class ReserveOutcome(IntEnum):
    RESERVED = 1
    DUPLICATE = 2
    SOLD_OUT = 3
    UNCOUNTED = 4  # the seat state is not known to be complete (Redis lost it): nothing can be decided
    OVER_FAIR_SHARE = 5  # this user sent more requests for the coupon this second than its fair share


def reserve_outcome(*, counted: bool, holds_seat: bool, taken: int, total: int | None) -> ReserveOutcome:
    """The reservation rule of the async paths: nothing is sold from a seat state not known to be complete
    (after a loss, until it is rebuilt); then a user holding a seat is a duplicate, then the quantity rule
    decides. The Lua reservation script mirrors it (one atomic step in Redis)."""
    if not counted:
        return ReserveOutcome.UNCOUNTED
    if holds_seat:
        return ReserveOutcome.DUPLICATE
    if not quantity_left(total, taken):
        return ReserveOutcome.SOLD_OUT
    return ReserveOutcome.RESERVED


@dataclass(frozen=True, slots=True)
class PendingReservation:
    """A held seat not yet confirmed in MySQL, as the seat store keeps it."""

    coupon_id: int
    user_id: int
    token: str
    reserved_at_ms: int

    def stored(self) -> str:
        """The stored form, ``<token>|<reserved at, epoch ms>`` (the Lua scripts write and match its prefix)."""
        return f"{self.token}|{self.reserved_at_ms}"

    @classmethod
    def from_stored(cls, coupon_id: int, user_id: int, stored: str) -> PendingReservation:
        token, _, reserved_at = stored.partition("|")
        return cls(coupon_id, user_id, token, int(reserved_at or 0))

    def message(self) -> ReservationMessage:
        return ReservationMessage(self.coupon_id, self.user_id, self.token, self.reserved_at_ms)


# The longest wait between two resends of one reservation (reconcile keeps trying, but calmly).
MAX_RESEND_GAP_MS = 30 * 60 * 1000


@dataclass(frozen=True, slots=True)
class ResendRecord:
    """How often reconciliation has sent one pending reservation again, and when last."""

    count: int = 0
    last_ms: int = 0

    def is_due(self, now_ms: int, first_after_ms: int) -> bool:
        """The first resend is due at once; then the gap doubles with every resend (first_after_ms, twice
        that, ...) up to MAX_RESEND_GAP_MS, so an outage does not queue a reservation on every pass."""
        gap = min(first_after_ms * 2**self.count, MAX_RESEND_GAP_MS)
        return self.count == 0 or now_ms - self.last_ms >= gap


class ForgedReservationError(ValueError):
    """A well-formed reservation whose signature is missing or wrong: the service did not make it."""
