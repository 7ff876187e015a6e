"""Run one reconciliation pass by hand, through the template's reconcile function: ``make reconcile``.
The local server runs the same pass every minute. (In AWS: invoke ReconcileFunction.)"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from localdev.functions import LocalFunction
from localdev.lambda_runtime import LocalLambdaContext
from localdev.sqs_local import QueueSettings, ensure_issue_queue
from localdev.template_routes import load_template

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


@cache
def _function() -> LocalFunction:
    properties = load_template(TEMPLATE)["Resources"]["ReconcileFunction"]["Properties"]
    return LocalFunction(
        "ReconcileFunction", (TEMPLATE.parent / properties["CodeUri"]).resolve(), properties["Handler"]
    )


def run_once() -> dict[str, Any]:
    ensure_issue_queue(QueueSettings.from_template(TEMPLATE))  # by hand, outside the server: find the queue
    report: dict[str, Any] = _function().invoke({}, LocalLambdaContext(function_name="ReconcileFunction"))
    return report


if __name__ == "__main__":
    print(json.dumps(run_once()))
