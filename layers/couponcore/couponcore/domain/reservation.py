"""A reservation: a seat held in Redis on its way to MySQL, as it travels on the issue queue.

Only the service issues coupons: every message carries a signature over its fields (an HMAC made with a
key only the service's functions can read), and batch_persist persists nothing else. Who is first is
decided by ``reservedAt``, so it is signed too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

MAX_ID = 2**63 - 1  # BIGINT
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


class ForgedReservationError(ValueError):
    """A well-formed reservation whose signature is missing or wrong: the service did not make it."""
