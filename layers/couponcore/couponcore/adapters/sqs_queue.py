"""The IssueQueue port on SQS: signed reservations to batch_persist, and forgeries to the dead letters.

A reservation's send is retried here, not by botocore, so that each failure is known for what it is: if no
attempt reached SQS (no connection) the seat is given back; if one may have (a read timeout, a dropped
connection, a server error) OutcomeUnknownError keeps the seat, for reconciliation to resend.
"""

from __future__ import annotations

from typing import Any

import boto3
import botocore.exceptions

from couponcore.adapters.aws import ATTEMPTS, client_config, worst_call_s
from couponcore.adapters.driver_errors import SQS_UNAVAILABLE, on_sqs
from couponcore.adapters.signing import ReservationSeal
from couponcore.domain.errors import DependencyUnavailableError, OutcomeUnknownError
from couponcore.domain.reservation import ReservationMessage

# The request left: SQS may have stored the message although the answer never came back.
MAYBE_SENT = (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectionClosedError)


def may_have_arrived(error: Exception) -> bool:
    if isinstance(error, botocore.exceptions.ClientError):
        return int(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500)) >= 500
    return isinstance(error, MAYBE_SENT)


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
        # Fail fast: a client waiting on SQS holds nothing, but its seat stays reserved until we decide. One
        # attempt per call: the send retries itself (see above), the other calls through _retried.
        self._client: Any = boto3.client("sqs", config=client_config(timeout_s, max_pool_connections=64, attempts=1))

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

    def send(self, message: ReservationMessage) -> None:
        body = self._seal.seal(message)
        maybe_sent = False
        for attempt in range(1, ATTEMPTS + 1):
            try:
                self._client.send_message(QueueUrl=self.queue_url, MessageBody=body)
                return
            except SQS_UNAVAILABLE as error:
                # Sending again is harmless (batch_persist issues once); giving the seat back is not, if any
                # attempt may have arrived.
                maybe_sent = maybe_sent or may_have_arrived(error)
                if attempt == ATTEMPTS:
                    failure = OutcomeUnknownError if maybe_sent else DependencyUnavailableError
                    raise failure("sqs", error) from error

    def _retried(self, call: Any, **arguments: Any) -> Any:
        """Calls whose repetition is harmless (a resend, a dead letter, a read), tried ATTEMPTS times."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return call(**arguments)
            except SQS_UNAVAILABLE:
                if attempt == ATTEMPTS:
                    raise
        return None

    @on_sqs
    def send_many(self, messages: list[ReservationMessage]) -> None:
        """In batches; raises if any entry was refused (resending is harmless: batch_persist is idempotent)."""
        for start in range(0, len(messages), BATCH_LIMIT):
            chunk = messages[start : start + BATCH_LIMIT]
            entries = [{"Id": str(i), "MessageBody": self._seal.seal(m)} for i, m in enumerate(chunk)]
            answer = self._retried(self._client.send_message_batch, QueueUrl=self.queue_url, Entries=entries)
            failed = answer.get("Failed", [])
            if failed:
                raise DependencyUnavailableError(
                    "sqs", RuntimeError(f"refused {len(failed)} of {len(chunk)}: {failed[0]}")
                )

    @on_sqs
    def dead_letter(self, body: str, reason: str) -> None:
        """A message batch_persist refuses for good, kept as it came for a person to look at."""
        if not self._dead_letter_url:
            raise RuntimeError("DEAD_LETTER_QUEUE_URL is not set")
        self._retried(
            self._client.send_message,
            QueueUrl=self._dead_letter_url,
            MessageBody=body,
            MessageAttributes={"refusedBecause": {"DataType": "String", "StringValue": reason}},
        )

    @on_sqs
    def ping(self) -> None:
        self._retried(self._client.get_queue_attributes, QueueUrl=self.queue_url, AttributeNames=["QueueArn"])

    @on_sqs
    def holds_nothing(self) -> bool:
        """Whether the queue holds no message at all: none waiting, none being processed, none delayed."""
        answer = self._retried(
            self._client.get_queue_attributes,
            QueueUrl=self.queue_url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )
        return not any(int(count) for count in answer.get("Attributes", {}).values())
