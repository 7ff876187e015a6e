"""Sleeps as long as the request asks, then says which process ran it and when."""

import json
import os
import time
from typing import Any

INIT_AT = time.time()


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    seconds = float(json.loads(event.get("body") or "{}").get("sleep", 0))
    started = time.time()
    time.sleep(seconds)
    report = {
        "pid": os.getpid(),
        "started": started,
        "ended": time.time(),
        "initAt": INIT_AT,
        "greeting": os.environ.get("GREETING"),
        "remainingMs": context.get_remaining_time_in_millis(),
        "requestId": context.aws_request_id,
    }
    return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": json.dumps(report)}
