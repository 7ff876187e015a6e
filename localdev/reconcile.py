"""Run one reconciliation pass by hand, through the reconcile function's handler: ``make reconcile``.
(In AWS: invoke ReconcileFunction, e.g. ``aws lambda invoke --function-name <ReconcileFunction> out.json``.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from localdev.functions import LocalFunction
from localdev.lambda_runtime import LocalLambdaContext

ROOT = Path(__file__).resolve().parent.parent


def run_once() -> dict[str, Any]:
    function = LocalFunction("reconcile", ROOT / "functions" / "reconcile")
    report: dict[str, Any] = function.invoke({}, LocalLambdaContext(function_name="reconcile"))
    return report


if __name__ == "__main__":
    print(json.dumps(run_once()))
