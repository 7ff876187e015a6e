"""The events AWS hands a function: API Gateway payload-2.0 requests and SQS batches."""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from typing import Any

REGION = "us-east-1"


def http_api_event(
    method: str,
    path: str,
    *,
    route_key: str | None = None,
    path_parameters: dict[str, str] | None = None,
    body: str | dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    query: str = "",
    source_ip: str = "127.0.0.1",
    is_base64_encoded: bool = False,
) -> dict[str, Any]:
    """An API Gateway HTTP API payload-2.0 event, shaped as AWS sends it."""
    now = time.time()
    raw_body = json.dumps(body) if isinstance(body, dict) else body
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    if raw_body is not None:
        lowered.setdefault("content-type", "application/json")
    request_id = uuid.uuid4().hex[:16]
    query_parameters: dict[str, str] = {}
    for pair in filter(None, query.split("&")):
        key, _, value = pair.partition("=")
        query_parameters[key] = f"{query_parameters[key]},{value}" if key in query_parameters else value
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key or f"{method} {path}",
        "rawPath": path,
        "rawQueryString": query,
        "headers": lowered,
        "requestContext": {
            "accountId": "000000000000",
            "apiId": "local",
            "domainName": "127.0.0.1",
            "domainPrefix": "local",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": lowered.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": route_key or f"{method} {path}",
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": is_base64_encoded,
    }
    if query_parameters:
        event["queryStringParameters"] = query_parameters
    if path_parameters:
        event["pathParameters"] = path_parameters
    if raw_body is not None:
        event["body"] = raw_body
    return event


def sqs_event(queue_arn: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping delivers, from ReceiveMessage's messages."""
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


def schedule_event(schedule_name: str) -> dict[str, Any]:
    """What a rate schedule hands its function (the shape of events/reconcile_schedule.json)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.scheduler",
        "account": "000000000000",
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "region": REGION,
        "resources": [f"arn:aws:scheduler:{REGION}:000000000000:schedule/default/{schedule_name}"],
        "detail": {},
    }
