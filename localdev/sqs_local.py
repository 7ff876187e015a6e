"""The template's SQS queue, its DLQ and its event source mapping, made real against a local SQS API.

`create_queues` creates the queue pair with the template's visibility timeout and redrive policy; the
`Poller` feeds a function the way the event source mapping says: batch size, batching window, partial
batch failures (only reported records stay on the queue), and as many batches in flight as
`ScalingConfig.MaximumConcurrency`. Redrive to the DLQ after `maxReceiveCount` is the emulator's own.
Each batch is handed to `invoke`: in the local stack, the Lambda runtime running the function.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3

from localdev.events import sqs_event
from localdev.runtime import TooManyRequestsError
from localdev.template import QueueMapping

log = logging.getLogger("localdev.sqs")
REGION = "us-east-1"
Invoke = Callable[[dict[str, Any]], Any]


def sqs_client(
    endpoint_url: str | None = None, credentials: Mapping[str, str] | None = None, ca_bundle: str | None = None
) -> Any:
    """The developer's client (the environment's keys), or a role's with its credentials."""
    keys = (
        {
            "aws_access_key_id": credentials["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": credentials["AWS_SECRET_ACCESS_KEY"],
            "aws_session_token": credentials["AWS_SESSION_TOKEN"],
        }
        if credentials
        else {}
    )
    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL")
    client: Any = boto3.client(  # type: ignore[call-overload]  # the stubs' overloads take no **keys
        "sqs", region_name=REGION, endpoint_url=endpoint, verify=ca_bundle, **keys
    )
    return client


def create_queues(
    name: str, settings: QueueMapping, endpoint_url: str | None = None, visibility_timeout_s: int | None = None
) -> tuple[str, str]:
    """Create (or find) the queue and its DLQ; returns (queue url, dlq url)."""
    sqs = sqs_client(endpoint_url)
    dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(settings.max_receive_count)})
    visibility = settings.visibility_timeout_s if visibility_timeout_s is None else visibility_timeout_s
    queue_url = sqs.create_queue(
        QueueName=name, Attributes={"VisibilityTimeout": str(visibility), "RedrivePolicy": redrive}
    )["QueueUrl"]
    return queue_url, dlq_url


class Poller:
    def __init__(
        self, queue_url: str, settings: QueueMapping, invoke: Invoke, client: Callable[[], Any] = sqs_client
    ) -> None:
        self._queue_url = queue_url
        self._settings = settings
        self._client = client
        self._invoke = invoke
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        sqs = client()
        self._queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        self.batches = 0

    def start(self) -> Poller:
        for index in range(self._settings.max_concurrency):
            thread = threading.Thread(target=self._run, name=f"sqs-poller-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _run(self) -> None:
        sqs = self._client()
        while not self._stop.is_set():
            try:
                messages = self._gather(sqs)
                if messages:
                    self._deliver(sqs, messages)
            except Exception:
                log.exception("poller iteration failed")
                self._stop.wait(1)

    def _gather(self, sqs: Any) -> list[dict[str, Any]]:
        """Up to BatchSize messages, waiting at most the batching window once the first one arrived."""
        batch: list[dict[str, Any]] = []
        deadline: float | None = None
        while len(batch) < self._settings.batch_size and not self._stop.is_set():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            wait = 1 if remaining is None else max(0, min(1, int(remaining)))
            received = sqs.receive_message(
                QueueUrl=self._queue_url,
                MaxNumberOfMessages=min(10, self._settings.batch_size - len(batch)),
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if received and deadline is None:
                deadline = time.monotonic() + self._settings.batching_window_s
            batch.extend(received)
            if not received and batch:
                break
            if not received and deadline is None:
                return batch
        return batch

    def _deliver(self, sqs: Any, messages: list[dict[str, Any]]) -> None:
        event = sqs_event(self._queue_arn, messages)
        received = time.monotonic()
        while True:
            try:
                response = self._invoke(event)
                break
            except TooManyRequestsError:
                # As the event source mapping does: back off and retry while the messages are still ours.
                if time.monotonic() - received > self._settings.visibility_timeout_s / 2 or self._stop.wait(0.5):
                    return
            except Exception as error:
                # A failed invocation: like Lambda, every message becomes visible again after the timeout.
                log.warning("batch invocation failed (%s); %d messages will be retried", error, len(messages))
                return
        failed = {f["itemIdentifier"] for f in (response or {}).get("batchItemFailures", [])}
        if failed and not self._settings.report_batch_item_failures:
            return  # without partial failures, the whole batch is retried
        done = [m for m in messages if m["MessageId"] not in failed]
        for start in range(0, len(done), 10):
            chunk = done[start : start + 10]
            sqs.delete_message_batch(
                QueueUrl=self._queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
            )
        self.batches += 1
