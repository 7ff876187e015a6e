"""Moves reservations from the dead-letter queue back to the issue queue, after the cause is fixed.

    python scripts/redrive.py                      # the local stack's queues: counts only (a dry run)
    python scripts/redrive.py --move               # ...and moves them
    python scripts/redrive.py --stack coupon-dev   # the deployed stack's queues (its outputs name them)

Moving is safe to repeat: batch_persist is idempotent per (coupon, user), and a reservation whose seat
was released in the meantime is answered REJECTED again. SQS's own message move task does the move where
the API offers it; otherwise (an emulator without it) each message is received, sent back and deleted.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from localdev.environment import use_local_defaults

CLIENT = Config(connect_timeout=5, read_timeout=25, retries={"mode": "standard", "max_attempts": 3})
MOVE_TASK_UNSUPPORTED = {"UnsupportedOperation", "InvalidAction", "NotImplemented", "InternalFailure"}


def queues(sqs: Any, stack: str | None) -> tuple[str, str]:
    if stack:
        outputs = boto3.client("cloudformation", config=CLIENT).describe_stacks(StackName=stack)["Stacks"][0]["Outputs"]
        by_key = {o["OutputKey"]: o["OutputValue"] for o in outputs}
        return by_key["IssueQueueUrl"], by_key["IssueDeadLetterQueueUrl"]
    name = os.environ.get("ISSUE_QUEUE_NAME", "coupon-issue")  # what the local stack creates
    return sqs.get_queue_url(QueueName=name)["QueueUrl"], sqs.get_queue_url(QueueName=f"{name}-dlq")["QueueUrl"]


def depth(sqs: Any, url: str) -> int:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(attributes[name]) for name in names)


def arn(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


def move_with_task(sqs: Any, dlq_url: str, queue_url: str) -> int:
    source = arn(sqs, dlq_url)
    task = sqs.start_message_move_task(SourceArn=source, DestinationArn=arn(sqs, queue_url))
    while True:
        found = sqs.list_message_move_tasks(SourceArn=source, MaxResults=10)["Results"]
        current = next((t for t in found if t.get("TaskHandle") == task["TaskHandle"]), found[0] if found else {})
        if current.get("Status") in ("COMPLETED", "FAILED", "CANCELLED"):
            if current["Status"] != "COMPLETED":
                raise SystemExit(f"the move task ended {current['Status']}: {current.get('FailureReason', '')}")
            return int(current.get("ApproximateNumberOfMessagesMoved", 0))
        time.sleep(1)


def move_one_by_one(sqs: Any, dlq_url: str, queue_url: str) -> int:
    moved = 0
    while batch := sqs.receive_message(QueueUrl=dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages"):
        for message in batch:
            sqs.send_message(QueueUrl=queue_url, MessageBody=message["Body"])  # sent before deleted: never lost
            sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
            moved += 1
    return moved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stack", help="a deployed stack's name; default: the local stack's queues")
    parser.add_argument("--move", action="store_true", help="move them (without it: count only)")
    args = parser.parse_args()
    if not args.stack:
        use_local_defaults()  # the local stack's emulator and the developer's keys
    sqs = boto3.client("sqs", config=CLIENT)
    queue_url, dlq_url = queues(sqs, args.stack)
    waiting = depth(sqs, dlq_url)
    print(f"{waiting} reservation(s) in {dlq_url}")
    if not args.move or not waiting:
        if waiting:
            print("dry run: nothing moved (make redrive MOVE=1, or --move, moves them)")
        return
    try:
        moved = move_with_task(sqs, dlq_url, queue_url)
        how = "SQS message move task"
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in MOVE_TASK_UNSUPPORTED:
            raise
        moved, how = move_one_by_one(sqs, dlq_url, queue_url), "receive, send, delete"
    print(f"moved {moved} reservation(s) back to {queue_url} ({how}); {depth(sqs, dlq_url)} left in the DLQ")


if __name__ == "__main__":
    main()
