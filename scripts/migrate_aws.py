"""After `sam deploy`: invoke the stack's MigrateFunction so the database schema matches the code.

python scripts/migrate_aws.py [stack-name] [--region REGION]
"""

from __future__ import annotations

import argparse
import json

import boto3
from botocore.config import Config

# MigrateFunction may run up to its 300 s Timeout: wait that long for its answer, and never invoke it twice
# (botocore's defaults, a 60 s read and retries, would start a second migration beside the first).
INVOKE = Config(connect_timeout=10, read_timeout=310, retries={"total_max_attempts": 1})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stack", nargs="?", default="coupon-dev")
    parser.add_argument("--region", help="the stack's region (default: your AWS configuration's, as sam deploy's)")
    args = parser.parse_args()
    stack, session = args.stack, boto3.Session(region_name=args.region)
    outputs = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    function = next(o["OutputValue"] for o in outputs if o["OutputKey"] == "MigrateFunctionName")
    response = session.client("lambda", config=INVOKE).invoke(FunctionName=function, InvocationType="RequestResponse")
    payload = json.loads(response["Payload"].read() or b"{}")
    if response.get("FunctionError"):
        raise SystemExit(f"migration failed: {payload}")
    print(f"{stack}: database at revision {payload.get('revision')}")


if __name__ == "__main__":
    main()
