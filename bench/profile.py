"""Where one container spends an invocation: py-spy samples a warm container of the local runtime while wrk
drives its route from one connection, and the hottest frames are printed (share of the busy samples;
waiting for the next invocation is idle and not sampled).

    python -m bench.profile [--path v1|v2-refused|status|wallet] [--seconds 8]
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.common import issued_through_redis, issued_through_v1, new_coupon, sold_out_coupon
from bench.run import Tokens, free_port, fresh_account, v1_body, wrk
from couponcore.bootstrap import services
from couponcore.domain.coupon import IssueMode
from localdev.environment import use_local_defaults
from localdev.sqs_local import sqs_client
from localdev.stack import BackgroundStack, LocalDeployment, StackOptions

# py-spy's "function (path/to/file.py:line)": the function and the file's name are enough here.
FRAME = re.compile(r"^(.*) \((?:.*/)?([^/:]*)(?::\d+)?\)$")
FUNCTIONS = {
    "v1": "IssueSyncFunction",
    "v2-refused": "IssueAsyncFunction",
    "status": "CouponsFunction",
    "wallet": "WalletFunction",
}


def target(path: str, tokens: Tokens) -> tuple[str, str, str]:
    """The route's URL path, method and body, on coupons made for it."""
    users = range(tokens.first_user, tokens.first_user + tokens.count)
    if path == "v1":
        return "/v1/issue", "POST", v1_body(new_coupon(None, IssueMode.SYNC, warm=False))
    if path == "v2-refused":
        return "/v2/issue-async", "POST", v1_body(sold_out_coupon())
    coupon_id = new_coupon(None, IssueMode.ASYNC if path == "status" else IssueMode.SYNC, warm=False)
    if path == "status":
        issued_through_redis(coupon_id, users)
        return f"/coupons/{coupon_id}/issues/USER_ID", "GET", "-"
    issued_through_v1([coupon_id], users)
    return "/users/USER_ID/coupons", "GET", "-"


def hottest(raw: str, top: int) -> list[tuple[str, float, float]]:
    """(frame, inclusive share, own share) of py-spy's collapsed stacks, by inclusive share."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [FRAME.sub(r"\1 (\2)", frame) for frame in stack.split(";")]
        total += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
        own[frames[-1]] += int(count)
    return [(frame, n / total, own[frame] / total) for frame, n in inclusive.most_common(top)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--path", choices=FUNCTIONS, default="v1")
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    function = FUNCTIONS[args.path]
    use_local_defaults()
    account = fresh_account()
    stack = BackgroundStack(LocalDeployment(options=StackOptions(port=free_port(), workers=False))).start()
    try:
        with tempfile.TemporaryDirectory() as scratch:
            tokens = Tokens(Path(scratch), 700_001, 20_000 if args.path in ("v1", "v2-refused") else 200)
            route, method, body = target(args.path, tokens)
            warm_up = target(args.path, tokens)  # another coupon: the measured run's users are new to its own
            # wrk's two threads need two connections: two containers, one of them sampled.
            stack.warm(function, 2)
            wrk(stack.url + warm_up[0], tokens, warm_up[1], warm_up[2], connections=2, seconds=1)
            container = stack.stack.runtime.containers(function)[0]
            assert container.process is not None
            out = Path(scratch) / "samples.txt"
            spy = subprocess.Popen(  # noqa: S603 - py-spy from the venv, our arguments
                [
                    str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "--pid",
                    str(container.process.pid),
                    "--duration",
                    str(args.seconds),
                    "--rate",
                    "250",
                    "--format",
                    "raw",
                    "--output",
                    str(out),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            result = wrk(stack.url + route, tokens, method, body, connections=2, seconds=args.seconds)
            spy.wait(timeout=args.seconds + 60)
            durations = sorted(stack.stack.runtime.stats(function).duration_ms)
            print(
                f"{function} ({args.path}), two connections: {result.per_second:,.0f} req/s, statuses "
                f"{json.dumps(result.statuses)}, REPORT Duration p50 {durations[len(durations) // 2]:.2f} ms"
            )
            print(f"{'inclusive':>9} {'own':>6}  frame")
            for frame, inclusive, own in hottest(out.read_text(), args.top):
                print(f"{inclusive:>9.1%} {own:>6.1%}  {frame}")
    finally:
        stack.stop()
        services().adapters.redis.flushdb()
        sqs_client().delete_queue(QueueUrl=account.queue_url)


if __name__ == "__main__":
    main()
