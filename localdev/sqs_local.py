"""The template's SQS queue, its DLQ and its event source mapping, made real against a local SQS API.

`create_queues` creates the queue pair with the template's visibility timeout and redrive policy; the
`Poller` feeds batch_persist the way the event source mapping says: batch size, batching window,
partial batch failures (only reported records stay on the queue), and as many batches in flight as
`ScalingConfig.MaximumConcurrency`. Redrive to the DLQ after `maxReceiveCount` is the emulator's own.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from localdev.functions import LocalFunction
from localdev.lambda_runtime import LocalLambdaContext
from localdev.template_routes import load_template

log = logging.getLogger("localdev.sqs")
REGION = "us-east-1"


@dataclass(frozen=True)
class QueueSettings:
    visibility_timeout_s: int
    max_receive_count: int
    batch_size: int
    batching_window_s: float
    max_concurrency: int
    report_batch_item_failures: bool
    function: str
    code_dir: Path
    handler: str

    @classmethod
    def from_template(cls, template_path: Path) -> QueueSettings:
        resources = load_template(template_path)["Resources"]
        queue = resources["IssueQueue"]["Properties"]
        for logical_id, resource in resources.items():
            for event in resource.get("Properties", {}).get("Events", {}).values():
                if event.get("Type") == "SQS":
                    mapping = event["Properties"]
                    properties = resource["Properties"]
                    response_types = mapping.get("FunctionResponseTypes", [])
                    return cls(
                        visibility_timeout_s=int(queue["VisibilityTimeout"]),
                        max_receive_count=int(queue["RedrivePolicy"]["maxReceiveCount"]),
                        batch_size=int(mapping.get("BatchSize", 10)),
                        batching_window_s=float(mapping.get("MaximumBatchingWindowInSeconds", 0)),
                        max_concurrency=int(mapping.get("ScalingConfig", {}).get("MaximumConcurrency", 2)),
                        report_batch_item_failures="ReportBatchItemFailures" in response_types,
                        function=logical_id,
                        code_dir=(template_path.parent / properties["CodeUri"]).resolve(),
                        handler=properties["Handler"],
                    )
        raise ValueError("template.yaml has no SQS event source mapping")


def sqs_client(endpoint_url: str | None = None) -> Any:
    return boto3.client("sqs", region_name=REGION, endpoint_url=endpoint_url)


def create_queues(
    name: str, settings: QueueSettings, endpoint_url: str | None = None, visibility_timeout_s: int | None = None
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


def ensure_issue_queue(settings: QueueSettings) -> str | None:
    """Sets ISSUE_QUEUE_URL to the local queue pair (created if missing) unless it is already set;
    returns the DLQ's URL when it created or found the pair."""
    if os.environ.get("ISSUE_QUEUE_URL"):
        return None
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    queue_url, dlq_url = create_queues(os.environ.get("ISSUE_QUEUE_NAME", "coupon-issue"), settings, endpoint)
    os.environ["ISSUE_QUEUE_URL"] = queue_url
    log.info("SQS queue %s (dead letters: %s) on %s", queue_url, dlq_url, endpoint)
    return dlq_url


def sqs_event(queue_arn: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping delivers."""
    return {
        "Records": [
            {
                "messageId": m["MessageId"],
                "receiptHandle": m["ReceiptHandle"],
                "body": m["Body"],
                "attributes": m.get("Attributes", {}),
                "messageAttributes": m.get("MessageAttributes", {}),
                "md5OfBody": m.get("MD5OfBody") or hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for m in messages
        ]
    }


class Poller:
    def __init__(self, queue_url: str, settings: QueueSettings, endpoint_url: str | None = None) -> None:
        self._queue_url = queue_url
        self._settings = settings
        self._endpoint_url = endpoint_url
        self._function = LocalFunction(settings.function, settings.code_dir, settings.handler)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        sqs = sqs_client(endpoint_url)
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
        sqs = sqs_client(self._endpoint_url)
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
        try:
            response = self._function.invoke(event, LocalLambdaContext(function_name=self._settings.function))
        except Exception:
            # A failed invocation: like Lambda, every message becomes visible again after the timeout.
            log.exception("batch handler raised; %d messages will be retried", len(messages))
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
