"""What SnapStart saves at the opening second of a sale, measured on this machine.

python -m bench.snapstart [--repeat 5]

Each sample is a fresh process running the async issue function in-process against the local MariaDB,
Redis and SQS, with one V2 request:
- cold: the function's imports (Lambda's init) and then the first request, as every new container pays it;
- restored: imports and the before-snapshot hook first (SnapStart runs them when the version is published),
  then, timed, the after-restore hook and the first request, as a container restored from the snapshot
  pays it; Lambda's own restore of the microVM comes on top and cannot be measured here;
- warm: the second request of the same process, the floor.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid

from localdev.environment import use_local_defaults

# Nothing of the service is imported at module level: a child process must pay its imports inside the timing.
MODES = ("cold", "restored")


def sample(mode: str, coupon_id: int) -> dict[str, float]:
    """Runs in the child process: returns the timings of one container's life, in ms."""
    started = time.perf_counter()
    from localdev.events import http_api_event
    from localdev.inprocess import LambdaContext, handler

    app = handler("issue_async")
    if mode == "restored":
        from snapshot_restore_py import get_after_restore, get_before_snapshot

        for hook, args, kwargs in get_before_snapshot():
            hook(*args, **kwargs)
        started = time.perf_counter()  # the snapshot: everything before this was paid at publish time
        for hook, args, kwargs in get_after_restore():
            hook(*args, **kwargs)
    timings = {}
    for name, user in (("first", 1), ("warm", 2)):
        event = http_api_event("POST", "/v2/issue-async", body={"couponId": coupon_id, "userId": user})
        response = app(event, LambdaContext(function_name="IssueAsyncFunction"))
        if response["statusCode"] != 202:
            raise SystemExit(f"{mode}: {response}")
        timings[name] = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
    return timings


def main() -> None:
    use_local_defaults()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--child", choices=MODES)
    parser.add_argument("--coupon", type=int)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(sample(args.child, args.coupon)))
        return
    from bench.common import new_coupon  # sets the bench's environment, which the children inherit
    from couponcore.config import Settings
    from couponcore.domain.coupon import IssueMode
    from localdev.migrate import deploy_database
    from localdev.sqs_local import sqs_client

    account, _ = deploy_database(Settings.from_env(), f"coupon-snapstart-{uuid.uuid4().hex[:8]}")
    queue_url, dlq_url = account.queue_url, account.dead_letter_url
    signing = account.secret("MessageSigningSecret")
    env = {**os.environ, "ISSUE_QUEUE_URL": queue_url, "SIGNING_SECRET_ARN": signing}
    results: dict[str, list[dict[str, float]]] = {mode: [] for mode in MODES}
    try:
        for _ in range(args.repeat):
            for mode in MODES:  # alternated, so a slow moment of the machine hits both
                # As the API creates one (its view and the highest id in Redis); the container's cache is empty.
                coupon_id = new_coupon(None, IssueMode.ASYNC)
                command = [sys.executable, "-m", "bench.snapstart", "--child", mode, "--coupon", str(coupon_id)]
                child = subprocess.run(command, check=False, env=env, capture_output=True, text=True)  # noqa: S603 - our own module
                if child.returncode:
                    raise SystemExit(f"{mode} sample failed:\n{child.stderr[-3000:]}{child.stdout[-1000:]}")
                output = child.stdout
                results[mode].append(json.loads(output.strip().splitlines()[-1]))
    finally:
        for url in (queue_url, dlq_url):
            sqs_client().delete_queue(QueueUrl=url)
    cold, restored = (statistics.median(r["first"] for r in results[mode]) for mode in MODES)
    warm = statistics.median(r["warm"] for mode in MODES for r in results[mode])
    print(f"IssueAsyncFunction, V2 request, median of {args.repeat} fresh processes ({sys.version.split()[0]}):")
    print("| first request of a container | ms |")
    print("|---|---:|")
    print(f"| cold start: imports + first request | {cold:.0f} |")
    print(f"| SnapStart restore: after-restore hook + first request | {restored:.0f} |")
    print(f"| warm request (floor) | {warm:.1f} |")
    print(f"restored / cold = {restored / cold:.2f}; what is left after a restore is connecting (MySQL, Redis, SQS)")


if __name__ == "__main__":
    main()
