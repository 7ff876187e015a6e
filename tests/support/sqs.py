"""The test's SQS queue pair, and waiting for asynchronous outcomes."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from localdev.sqs_local import sqs_client
from localdev.template import QueueMapping


@dataclass
class QueuePair:
    url: str
    dlq_url: str
    settings: QueueMapping
    endpoint: str

    def depth(self, url: str | None = None) -> int:
        attributes = sqs_client(self.endpoint).get_queue_attributes(
            QueueUrl=url or self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def wait_until(condition: Callable[[], bool], timeout_s: float = 30, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.1)
