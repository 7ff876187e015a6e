"""The IssueQueue port on SQS: signed reservations to batch_persist, and forgeries to the dead letters."""

from __future__ import annotations

from typing import Any

import boto3

from couponcore.adapters.aws import client_config, worst_call_s
from couponcore.adapters.driver_errors import on_sqs
from couponcore.adapters.signing import ReservationSeal
from couponcore.domain.errors import DependencyUnavailableError
from couponcore.domain.reservation import ReservationMessage

BATCH_LIMIT = 10  # entries per SendMessageBatch, as SQS allows


class SqsIssueQueue:
    def __init__(
        self, queue_url: str | None, timeout_s: float, seal: ReservationSeal, dead_letter_url: str | None = None
    ) -> None:
        self._queue_url = queue_url
        self._dead_letter_url = dead_letter_url
        self._seal = seal
        # The longest one send can take: every attempt at its connect and read timeouts.
        self._worst_case_s = worst_call_s(timeout_s)
        # Fail fast: a client waiting on SQS holds nothing, but its seat stays reserved until we decide.
        self._client: Any = boto3.client("sqs", config=client_config(timeout_s, max_pool_connections=64))

    @property
    def worst_case_s(self) -> float:
        return self._worst_case_s

    @property
    def queue_url(self) -> str:
        if not self._queue_url:
            raise RuntimeError("ISSUE_QUEUE_URL is not set")
        return self._queue_url

    def prepare_send(self) -> None:
        """What a send needs besides the call itself (the signing key), had before a seat is reserved."""
        self._seal.load_key()

    @on_sqs
    def send(self, message: ReservationMessage) -> None:
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=self._seal.seal(message))

    @on_sqs
    def send_many(self, messages: list[ReservationMessage]) -> None:
        """In batches; raises if any entry was refused (resending is harmless: batch_persist is idempotent)."""
        for start in range(0, len(messages), BATCH_LIMIT):
            chunk = messages[start : start + BATCH_LIMIT]
            entries = [{"Id": str(i), "MessageBody": self._seal.seal(m)} for i, m in enumerate(chunk)]
            failed = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed", [])
            if failed:
                raise DependencyUnavailableError(
                    "sqs", RuntimeError(f"refused {len(failed)} of {len(chunk)}: {failed[0]}")
                )

    @on_sqs
    def dead_letter(self, body: str, reason: str) -> None:
        """A message batch_persist refuses for good, kept as it came for a person to look at."""
        if not self._dead_letter_url:
            raise RuntimeError("DEAD_LETTER_QUEUE_URL is not set")
        self._client.send_message(
            QueueUrl=self._dead_letter_url,
            MessageBody=body,
            MessageAttributes={"refusedBecause": {"DataType": "String", "StringValue": reason}},
        )

    @on_sqs
    def ping(self) -> None:
        self._client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
