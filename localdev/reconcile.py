"""One reconciliation pass by hand, through the template's reconcile function: ``make reconcile``.

It invokes ReconcileFunction through the running local stack's Lambda Invoke API when one answers on
LOCAL_API_PORT (as `aws lambda invoke` would in AWS), or else starts the runtime for this one
invocation. The running stack also invokes it on the template's schedule.
"""

from __future__ import annotations

import asyncio
import json
import os
import urllib.error
import urllib.request
from typing import Any

from localdev.environment import use_local_defaults
from localdev.events import schedule_event
from localdev.stack import LocalDeployment, StackOptions

FUNCTION = "ReconcileFunction"


def through_running_stack(port: int) -> dict[str, Any] | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/2015-03-31/functions/{FUNCTION}/invocations",
        data=json.dumps(schedule_event("by-hand")).encode(),
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=330) as response:  # noqa: S310 - a loopback URL
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except (urllib.error.URLError, ConnectionError):
        return None


async def in_a_runtime_of_its_own() -> dict[str, Any]:
    stack = LocalDeployment(options=StackOptions(workers=False))
    await stack.start_functions()
    try:
        report: dict[str, Any] = await stack.runtime.invoke(FUNCTION, schedule_event("by-hand"))
        return report
    finally:
        await stack.stop()


def run_once() -> dict[str, Any]:
    port = int(os.environ.get("LOCAL_API_PORT", "3000"))
    return through_running_stack(port) or asyncio.run(in_a_runtime_of_its_own())


if __name__ == "__main__":
    use_local_defaults()
    print(json.dumps(run_once()))
