"""`make deploy`: sam deploy with a parameter file, then the migrations through the stack's MigrateFunction.

    python scripts/deploy.py --parameters my-account.json [--stack coupon-dev] [--region eu-west-1]

The parameter file has the shape of those in deploy/parameter-sets/ (copy one and put your account's values
in it). No question is asked: nothing is left to a guided deploy's prompts. Without --region, both the
deploy and the migrations use your AWS configuration's region.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def overrides(parameters: dict[str, Any]) -> list[str]:
    """sam deploy's --parameter-overrides, one Key=Value argument each (lists joined by commas)."""
    return [f"{key}={','.join(value) if isinstance(value, list) else value}" for key, value in parameters.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parameters", type=Path, required=True)
    parser.add_argument("--stack", default="coupon-dev")
    parser.add_argument("--region")
    parser.add_argument("--sam", default=str(ROOT / ".venv-tools" / "bin" / "sam"))
    args = parser.parse_args()
    parameters = json.loads(args.parameters.read_text())["parameters"]
    region = ["--region", args.region] if args.region else []
    deploy = [
        args.sam,
        "deploy",
        "--stack-name",
        args.stack,
        "--capabilities",
        "CAPABILITY_IAM",
        "--resolve-s3",
        "--no-fail-on-empty-changeset",
        *region,
        "--parameter-overrides",
        *overrides(parameters),
    ]
    subprocess.run(deploy, cwd=ROOT, check=True)  # noqa: S603 - the developer's own sam and parameters
    migrate = [sys.executable, str(ROOT / "scripts" / "migrate_aws.py"), args.stack, *region]
    subprocess.run(migrate, cwd=ROOT, check=True)  # noqa: S603


if __name__ == "__main__":
    main()
