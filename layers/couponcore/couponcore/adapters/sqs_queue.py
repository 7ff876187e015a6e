"""The IssueQueue port on SQS: reservations to batch_persist."""

from __future__ import annotations

from typing import Any

import boto3

from couponcore.adapters.aws import client_config, worst_call_s
from couponcore.adapters.faults import on_sqs
from couponcore.domain.errors import DependencyUnavailableError
from couponcore.domain.reservation import ReservationMessage

BATCH_LIMIT = 10  # entries per SendMessageBatch, as SQS allows


class SqsIssueQueue:
    def __init__(self, queue_url: str | None, timeout_s: float) -> None:
        self._queue_url = queue_url
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

    @on_sqs
    def send(self, message: ReservationMessage) -> None:
        self._client.send_message(QueueUrl=self.queue_url, MessageBody=message.to_json())

    @on_sqs
    def send_many(self, messages: list[ReservationMessage]) -> None:
        """In batches; raises if any entry was refused (resending is harmless: batch_persist is idempotent)."""
        for start in range(0, len(messages), BATCH_LIMIT):
            chunk = messages[start : start + BATCH_LIMIT]
            entries = [{"Id": str(i), "MessageBody": m.to_json()} for i, m in enumerate(chunk)]
            failed = self._client.send_message_batch(QueueUrl=self.queue_url, Entries=entries).get("Failed", [])
            if failed:
                raise DependencyUnavailableError(
                    "sqs", RuntimeError(f"refused {len(failed)} of {len(chunk)}: {failed[0]}")
                )

    @on_sqs
    def ping(self) -> None:
        self._client.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])
