"""The SQS queue that carries reservations to batch_persist."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config

MAX_ID = 2**63 - 1  # BIGINT
LATEST_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z, the last instant MySQL's DATETIME holds


@dataclass(frozen=True, slots=True)
class ReservationMessage:
    """What a reservation carries to batch_persist; the token ties it to its Redis seat."""

    coupon_id: int
    user_id: int
    token: str
    reserved_at_ms: int

    def to_json(self) -> str:
        return json.dumps(
            {
                "couponId": self.coupon_id,
                "userId": self.user_id,
                "token": self.token,
                "reservedAt": self.reserved_at_ms,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, body: str) -> ReservationMessage:
        """Raises ValueError on anything that is not a well-formed reservation, so that a bad record fails
        alone instead of failing the transaction of every record of its coupon."""
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
        return cls(int(coupon_id), int(user_id), token, int(reserved_at))  # type: ignore[arg-type]


SEND_ATTEMPTS = 2


class IssueQueue:
    def __init__(self, queue_url: str | None, timeout_s: float) -> None:
        self._queue_url = queue_url
        # The longest one send can take: every attempt at its connect and read timeouts.
        self.worst_case_s = SEND_ATTEMPTS * 2 * timeout_s
        # Fail fast: a client waiting on SQS holds nothing, but its seat stays reserved until we decide.
        self._client: Any = boto3.client(
            "sqs",
            config=Config(
                connect_timeout=timeout_s,
                read_timeout=timeout_s,
                retries={"mode": "standard", "max_attempts": SEND_ATTEMPTS},
                max_pool_connections=64,
            ),
        )

    @property
    def queue_url(self) -> str:
        if not self._queue_url:
            raise RuntimeError("ISSUE_QUEUE_URL is not set")
        return self._queue_url

    def send(self, message: ReservationMessage) -> None:
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=message.to_json())

    def send_many(self, messages: list[ReservationMessage]) -> None:
        """Ten to a call, as SQS allows; raises if any entry was refused (resending is harmless)."""
        for start in range(0, len(messages), 10):
            chunk = messages[start : start + 10]
            entries = [{"Id": str(i), "MessageBody": m.to_json()} for i, m in enumerate(chunk)]
            failed = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed", [])
            if failed:
                raise RuntimeError(f"SQS refused {len(failed)} of {len(chunk)} messages: {failed[0]}")

    def ping(self) -> None:
        self._client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
