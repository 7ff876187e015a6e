"""make redrive against the SQS emulator: a dry run counts and moves nothing; --move empties the DLQ into
the issue queue, every message intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from localdev.sqs_local import sqs_client
from tests.support.sqs import QueuePair, wait_until

ROOT = Path(__file__).resolve().parents[2]


def redrive(queue: QueuePair, *flags: str) -> str:
    name = queue.url.rstrip("/").rsplit("/", 1)[-1]
    env = {**os.environ, "ISSUE_QUEUE_NAME": name, "AWS_ENDPOINT_URL": queue.endpoint, "PYTHONPATH": str(ROOT)}
    command = [sys.executable, str(ROOT / "scripts" / "redrive.py"), *flags]
    return subprocess.run(command, env=env, check=True, capture_output=True, text=True, timeout=120).stdout


def test_a_dry_run_counts_and_a_move_returns_every_message(issue_queue: QueuePair) -> None:
    sqs = sqs_client(issue_queue.endpoint)
    bodies = {json.dumps({"couponId": 1, "userId": user, "token": f"t{user}", "reservedAt": 1}) for user in range(3)}
    for body in bodies:
        sqs.send_message(QueueUrl=issue_queue.dlq_url, MessageBody=body)
    wait_until(lambda: issue_queue.depth(issue_queue.dlq_url) == 3, what="three dead letters")

    assert "3 reservation(s)" in redrive(issue_queue) and "dry run" in redrive(issue_queue)
    assert issue_queue.depth(issue_queue.dlq_url) == 3 and issue_queue.depth() == 0

    assert "moved 3 reservation(s)" in redrive(issue_queue, "--move")
    wait_until(lambda: issue_queue.depth() == 3, what="the messages back in the issue queue")
    received: set[str] = set()
    while batch := sqs.receive_message(QueueUrl=issue_queue.url, MaxNumberOfMessages=10).get("Messages", []):
        received |= {m["Body"] for m in batch}
    assert received == bodies
    assert issue_queue.depth(issue_queue.dlq_url) == 0
