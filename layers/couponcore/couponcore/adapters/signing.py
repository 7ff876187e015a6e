"""Reservations on the queue are signed: HMAC-SHA256 with a key from Secrets Manager that only the
service's roles may read. Whoever else can reach the queue cannot mint a coupon, nor move a reservation
ahead in line (``reservedAt`` is signed), and the check survives Redis losing everything."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

from couponcore.adapters.aws import read_secret
from couponcore.domain.errors import DependencyUnavailableError
from couponcore.domain.reservation import ForgedReservationError, ReservationMessage


class ReservationSeal:
    def __init__(self, key: Callable[[], bytes]) -> None:
        self._key = key

    def load_key(self) -> None:
        """Fetches the key now (a cold container), so that signing later costs no network call."""
        self._key()

    def seal(self, message: ReservationMessage) -> str:
        """The message body, signed."""
        return message.to_json(self._signature(message))

    def open(self, body: str) -> ReservationMessage:
        """The reservation a body carries; ValueError if it is malformed, ForgedReservationError if the
        service did not sign it."""
        message, signature = ReservationMessage.from_json(body)
        if not hmac.compare_digest(signature.encode(), self._signature(message).encode()):
            raise ForgedReservationError(
                f"reservation {message.coupon_id}/{message.user_id} is not signed by the service"
            )
        return message

    def _signature(self, message: ReservationMessage) -> str:
        return hmac.new(self._key(), message.signed_bytes(), hashlib.sha256).hexdigest()


def secret_key(arn: str | None, timeout_s: float) -> Callable[[], bytes]:
    """The "key" of SIGNING_SECRET_ARN's JSON secret (cached with every secret)."""

    def key() -> bytes:
        if not arn:
            raise RuntimeError("SIGNING_SECRET_ARN is not set: reservations cannot be signed or checked")
        value = read_secret(arn, timeout_s).get("key")
        if not isinstance(value, str) or len(value) < 32:
            raise DependencyUnavailableError("secrets", ValueError(f"{arn} holds no key of 32 characters or more"))
        return value.encode()

    return key
