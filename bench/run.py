"""The benchmark runner: each path through the local stack (gateway -> Lambda runtime -> function), side by
side with a floor doing the same work without us, measured in the same run.

    python -m bench.run            # the full run; writes bench/results/latest.{json,md}
    python -m bench.run --quick    # seconds per case, nothing written: proves the benchmark still works

HTTP load comes from wrk (C, from Debian), which is not the bottleneck here; every request is a different
user with that user's token, and every answer's status is counted. Every case runs on fresh coupons and
ends with an invariant check; a broken invariant fails the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bench.common import (
    ROOT,
    InvariantError,
    Rate,
    check_mysql,
    check_mysql_after_load,
    check_redis,
    check_redis_after_load,
    drive,
    drive_processes,
    issued_through_redis,
    issued_through_v1,
    new_coupon,
    raw_mysql,
    sold_out_coupon,
)
from couponcore import bootstrap
from couponcore.adapters.reservations import RESERVE_SCRIPT, reserve_keys
from couponcore.adapters.unit_of_work import SYNC_ISSUE_BATCH
from couponcore.bootstrap import services
from couponcore.config import Settings
from couponcore.domain.clock import utc_now
from couponcore.domain.coupon import IssueMode
from couponcore.domain.reservation import PendingReservation, ReservationMessage
from localdev.account import LocalAccount
from localdev.environment import LOCAL_CA, use_local_defaults
from localdev.events import http_api_event, sqs_event
from localdev.iam import role_credentials
from localdev.jwt_local import ADMIN_SCOPE, mint
from localdev.migrate import deploy_database
from localdev.sqs_local import sqs_client
from localdev.stack import BackgroundStack, LocalDeployment, StackOptions

RESULTS = ROOT / "bench" / "results"
# A function that returns at once (the local runtime's own tests use it too).
EMPTY_FUNCTION = ROOT / "tests" / "e2e" / "runtime_fixture" / "template.yaml"
# One record that is not a reservation: batch_persist reports it failed, and is warm afterwards.
# An unparseable message: the warm-up persists nothing (its one ERROR line in the output is expected).
WARM_UP_BATCH = sqs_event("arn:aws:sqs:us-east-1:0:q", [{"MessageId": "warm-up", "ReceiptHandle": "r", "Body": "{}"}])
# An invocation of each function that changes nothing (no token: refused), to start or warm containers.
COLD_EVENTS = {
    "IssueSyncFunction": http_api_event("POST", "/v1/issue", body={"couponId": 1, "userId": 1}),
    "IssueAsyncFunction": http_api_event("POST", "/v2/issue-async", body={"couponId": 1, "userId": 1}),
    "CouponsFunction": http_api_event("GET", "/coupons/1", path_parameters={"couponId": "1"}),
    "WalletFunction": http_api_event(
        "GET", "/users/1/coupons", route_key="GET /users/{userId}/coupons", path_parameters={"userId": "1"}
    ),
    "OpsFunction": http_api_event("GET", "/health"),
    "BatchPersistFunction": WARM_UP_BATCH,
}
WRK_SCRIPT = ROOT / "bench" / "wrk" / "requests.lua"
WRK_THREADS = 2
PLAIN_V1 = (
    "SELECT total_quantity, issued_quantity FROM coupons WHERE id = %(coupon_id)s FOR UPDATE",
    "SELECT 1 FROM coupon_issues WHERE coupon_id = %(coupon_id)s AND user_id = %(user_id)s",
    "INSERT INTO coupon_issues (coupon_id, user_id, date_issued, date_created, date_updated) "
    "VALUES (%(coupon_id)s, %(user_id)s, %(now)s, %(now)s, %(now)s)",
    "UPDATE coupons SET issued_quantity = issued_quantity + 1, date_updated = %(now)s WHERE id = %(coupon_id)s",
)


@dataclass
class Row:
    case: str
    ours: float
    raw: float
    unit: str
    target: str
    ok: bool | None
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float:
        return self.ours / self.raw if self.raw else 0.0


def ratio_row(case: str, ours: float, raw: float, *, unit: str, target: float | None, note: str, **extra: Any) -> Row:
    met = None if target is None else ours / raw >= target if raw else False
    return Row(case, ours, raw, unit, f">= {target:.2f}" if target else "report", met, note, extra)


# --- load from wrk ---------------------------------------------------------------------------------
@dataclass
class WrkResult:
    per_second: float
    statuses: dict[int, int]
    p50_ms: float
    p99_ms: float

    @property
    def count(self) -> int:
        return sum(self.statuses.values())


class Tokens:
    """A file of "userId token" lines for wrk, one user per line, signed by the local issuer."""

    def __init__(self, directory: Path, first_user: int, count: int, admin: bool = False) -> None:
        self.path = directory / f"tokens-{first_user}-{count}.txt"
        self.first_user, self.count = first_user, count
        extra = {"scope": f"openid {ADMIN_SCOPE}"} if admin else {}
        with self.path.open("w") as out:
            for user in range(first_user, first_user + count):
                out.write(f"{user} {mint({'sub': str(user), **extra}, ttl_s=6 * 3600)}\n")


def wrk(url: str, tokens: Tokens, method: str, body: str, *, connections: int, seconds: float) -> WrkResult:
    command = wrk_command(url, tokens, method, body, connections=connections, seconds=seconds)
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 120).stdout  # noqa: S603
    return parse_wrk(out)


def wrk_command(url: str, tokens: Tokens, method: str, body: str, *, connections: int, seconds: float) -> list[str]:
    return [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "15s",
        "-s",
        str(WRK_SCRIPT),
        url,
        "--",
        str(tokens.path),
        method,
        body,
        str(WRK_THREADS),
    ]


def parse_wrk(out: str) -> WrkResult:
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    statuses = {
        int(s): int(n) for s, n in re.findall(r" (\d{3})=(\d+)", out.split("STATUSES", 1)[1].split("\n", maxsplit=1)[0])
    }
    latency = re.search(r"LATENCY_MS p50=([\d.]+) p99=([\d.]+)", out)
    assert latency, out
    return WrkResult(per_second, statuses, float(latency.group(1)), float(latency.group(2)))


def warmed_wrk(
    url: str,
    tokens: Tokens,
    method: str,
    body: str,
    *,
    connections: int,
    seconds: float,
    stack: BackgroundStack | None = None,
) -> WrkResult:
    """One second of load first (connections opened, containers, caches and secrets warm), then the measured
    run, once the warm-up's requests still running have finished (wrk leaves them running when it stops, as
    a client that hangs up leaves its Lambda invocation running)."""
    wrk(url, tokens, method, body, connections=connections, seconds=1)
    if stack is not None:
        stack.settle()
    return wrk(url, tokens, method, body, connections=connections, seconds=seconds)


def expect_only(result: WrkResult, status: int, case: str) -> None:
    if set(result.statuses) != {status}:
        raise InvariantError(f"{case}: expected only {status}, got {result.statuses}")


@contextmanager
def floor_server(coupon_id: int) -> Iterator[str]:
    """Bare uvicorn, 2 workers, one Redis call per request (bench/floor_app.py)."""
    port = free_port()
    env = {**os.environ, "FLOOR_COUPON_ID": str(coupon_id), "PYTHONPATH": f"{ROOT}:{ROOT / 'layers' / 'couponcore'}"}
    command = [sys.executable, "-m", "uvicorn", "bench.floor_app:app", "--workers", "2", "--port", str(port)]
    server = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [*command, "--log-level", "warning", "--no-access-log"], env=env, cwd=ROOT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(url, server)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for_http(url: str, process: subprocess.Popen[bytes] | None = None) -> None:
    import urllib.request

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/health", timeout=2)  # noqa: S310 - loopback
            return
        except OSError as error:
            if getattr(error, "code", None):  # an HTTP answer of any status: it is up
                return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


# --- the cases -------------------------------------------------------------------------------------
# The measured functions with the bare handlers' code (bench/bare/app.py), configured as the template says.
BARE = ROOT / "bench" / "bare"
BARE_CODE = {
    "IssueAsyncFunction": (BARE, "app.issue_async"),
    "IssueSyncFunction": (BARE, "app.issue_sync"),
    "CouponsFunction": (BARE, "app.coupons"),
    "WalletFunction": (BARE, "app.wallet"),
    "BatchPersistFunction": (BARE, "app.batch_persist"),
}
# Our REPORT Duration over the bare handler's, per path: "within 1.25x" is at least 0.8 of its throughput.
SAME_RUNTIME_TARGET = 1.25


@dataclass
class Target:
    """One run's target on both stacks: the path (ours, the bare handler's), body, and the answers expected."""

    ours: str
    bare: str
    body: str = "-"
    method: str = "POST"
    expect: int = 200


@dataclass
class SamePath:
    name: str
    function: str
    tokens: Tokens
    # A fresh target for each run (paths that write need new seats or rows), and the check after it.
    target: Callable[[], Target]
    check: Callable[[Target, WrkResult, int], None] = lambda *_: None


def durations_during(
    stack: BackgroundStack, function: str, run: Callable[[], WrkResult]
) -> tuple[WrkResult, list[float]]:
    """The load's answers and the REPORT Duration of each invocation it made (those still running when wrk
    stopped included)."""
    stats = stack.stack.runtime.stats(function)
    before = len(stats.duration_ms)
    result = run()
    stack.settle()
    return result, sorted(stats.duration_ms[before:])


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, int(len(values) * fraction))] if values else 0.0


def same_runtime(
    stacks: dict[str, BackgroundStack], paths: list[SamePath], connections: tuple[int, ...], seconds: float
) -> list[Row]:
    """Each path on our functions and on the bare handlers, same runtime, gateway and template configuration,
    one run after the other: each invocation's REPORT Duration (what Lambda bills, and what one container's
    throughput is the inverse of) and the answers per second through the gateway."""
    rows = []
    for path in paths:
        for count in connections:
            measured: dict[str, tuple[WrkResult, list[float]]] = {}
            for side, stack in stacks.items():
                stack.warm(path.function, count)
                warm_up = path.target()
                url = stack.url + (warm_up.ours if side == "ours" else warm_up.bare)
                wrk(url, path.tokens, warm_up.method, warm_up.body, connections=count, seconds=1)
                stack.settle()
                target = path.target()
                url = stack.url + (target.ours if side == "ours" else target.bare)
                result, durations = durations_during(
                    stack,
                    path.function,
                    lambda url=url, target=target, path=path, count=count: wrk(  # type: ignore[misc]
                        url, path.tokens, target.method, target.body, connections=count, seconds=seconds
                    ),
                )
                if set(result.statuses) - {target.expect, 429} or not result.statuses.get(target.expect):
                    raise InvariantError(f"{path.name} ({side}): expected {target.expect}, got {result.statuses}")
                path.check(target, result, count)
                measured[side] = result, durations
            (ours, ours_ms), (bare, bare_ms) = measured["ours"], measured["bare"]
            p50, bare_p50 = percentile(ours_ms, 0.5), percentile(bare_ms, 0.5)
            rows.append(
                Row(
                    f"{path.name}: REPORT Duration p50, ours vs the bare handler, {count} connections",
                    p50,
                    bare_p50,
                    "ms",
                    f"<= {SAME_RUNTIME_TARGET:.2f}x",
                    p50 <= bare_p50 * SAME_RUNTIME_TARGET,
                    f"ours adds {p50 - bare_p50:.2f} ms per invocation; answered {ours.per_second:,.0f}/s vs "
                    f"{bare.per_second:,.0f}/s through the gateway",
                    {
                        "difference_ms": p50 - bare_p50,
                        "ours_p99_ms": percentile(ours_ms, 0.99),
                        "bare_p99_ms": percentile(bare_ms, 0.99),
                        "ours_per_s": ours.per_second,
                        "bare_per_s": bare.per_second,
                        "ours_statuses": ours.statuses,
                        "bare_statuses": bare.statuses,
                        "invocations": [len(ours_ms), len(bare_ms)],
                    },
                )
            )
    return rows


def same_runtime_paths(scratch: Path, tokens: Tokens) -> list[SamePath]:
    """V2 refused and reserved, V1, the status route and the wallet, each with its targets and its check."""

    # One coupon for every run: a refusal changes nothing.
    refused = Target("/v2/issue-async", "/v2/issue-async?total=1", v1_body(sold_out_coupon()), expect=409)

    def open_seats() -> Target:
        coupon_id = new_coupon(None, IssueMode.ASYNC)
        return Target("/v2/issue-async", "/v2/issue-async?total=-1", v1_body(coupon_id), expect=202)

    def reserved(target: Target, result: WrkResult, connections: int) -> None:
        coupon_id = json.loads(target.body.replace("{user}", "0"))["couponId"]
        seats = services().adapters.seats.seats_taken(coupon_id)
        if not result.statuses[202] <= seats <= result.statuses[202] + connections:
            raise InvariantError(f"coupon {coupon_id}: {seats} seats for {result.statuses[202]} answers 202")

    def v1_coupon() -> Target:
        body = v1_body(new_coupon(None, IssueMode.SYNC, warm=False))
        return Target("/v1/issue", "/v1/issue", body)

    def v1_issued(target: Target, result: WrkResult, connections: int) -> None:
        coupon_id = json.loads(target.body.replace("{user}", "0"))["couponId"]
        check_mysql_after_load(coupon_id, result.statuses.get(200, 0), connections)

    pollers = Tokens(scratch, 1, 2_000)
    polled = new_coupon(None, IssueMode.ASYNC)
    issued_through_redis(polled, range(pollers.first_user, pollers.first_user + pollers.count))
    status = Target(f"/coupons/{polled}/issues/USER_ID", f"/coupons/{polled}/issues/USER_ID", method="GET")

    holders = Tokens(scratch, 800_001, 200)
    coupon_ids = [new_coupon(None, IssueMode.SYNC, warm=False) for _ in range(3)]
    issued_through_v1(coupon_ids, range(holders.first_user, holders.first_user + holders.count))
    wallet = Target("/users/USER_ID/coupons", "/users/USER_ID/coupons", method="GET")
    return [
        SamePath("V2 refused (sold out)", "IssueAsyncFunction", tokens, lambda: refused),
        SamePath("V2 reserve (Lua + SendMessage)", "IssueAsyncFunction", tokens, open_seats, reserved),
        SamePath("V1 issue, one unlimited coupon", "IssueSyncFunction", tokens, v1_coupon, v1_issued),
        SamePath("status route, issued outcomes", "CouponsFunction", pollers, lambda: status),
        SamePath("wallet, first page", "WalletFunction", holders, lambda: wallet),
    ]


# A cold start may cost this much more than the bare handler's, whose init imports boto3, redis and pymysql.
COLD_START_BUDGET_MS = 150


def init_duration(stack: BackgroundStack, function: str, event: Any, repeat: int) -> float:
    """The median Init Duration of ``repeat`` cold starts of the function, as the runtime reports it."""
    runtime, samples = stack.stack.runtime, []
    for _ in range(repeat):
        stack.recycle()  # every container retired: the next invocation starts one
        before = len(runtime.stats(function).init_ms)
        stack.invoke(function, event)
        samples.append(runtime.stats(function).init_ms[before])
    return statistics.median(samples)


def cold_starts(stack: BackgroundStack, bare: BackgroundStack, repeat: int) -> list[Row]:
    """Each function's Init Duration in a fresh container (the template's configuration, tracing as
    deployed) beside the bare handler's on the same runtime."""
    status = http_api_event("GET", "/coupons/1/issues/1", path_parameters={"couponId": "1", "userId": "1"})
    floor = init_duration(bare, "CouponsFunction", status, repeat)
    rows = []
    for function, event in COLD_EVENTS.items():
        init_ms = init_duration(stack, function, event, repeat)
        rows.append(
            Row(
                f"cold start: {function} (Init Duration, median of {repeat})",
                init_ms,
                floor,
                "ms",
                f"<= floor + {COLD_START_BUDGET_MS} ms",
                init_ms - floor <= COLD_START_BUDGET_MS,
                "floor = the bare handler's Init Duration on the same runtime (imports boto3, redis, pymysql)",
                {"over_floor_ms": init_ms - floor},
            )
        )
    return rows


def runtime_overhead(tokens: Tokens, connections: int, seconds: float) -> Row:
    """The local runtime's own ceiling: a handler that does nothing, behind the same gateway."""
    stack = BackgroundStack(LocalDeployment(EMPTY_FUNCTION, StackOptions(port=free_port(), workers=False))).start()
    try:
        url = f"{stack.url}/sleep"
        stack.warm("SleeperFunction", connections)
        ours = warmed_wrk(url, tokens, "POST", '{"sleep": 0}', connections=connections, seconds=seconds, stack=stack)
    finally:
        stack.stop()
    expect_only(ours, 200, "empty handler")
    with floor_server(new_coupon(1, IssueMode.ASYNC)) as floor_url:
        floor = warmed_wrk(f"{floor_url}/sleep", tokens, "GET", "-", connections=connections, seconds=seconds)
    return ratio_row(
        f"context: an empty handler on the local runtime, {connections} connections",
        ours.per_second,
        floor.per_second,
        unit="req/s",
        target=None,
        note="floor = bare uvicorn, 2 workers, one Redis GET per request; the runtime's own ceiling",
    )


def v2_refused_from_the_flag(stack: BackgroundStack, tokens: Tokens, connections: int, seconds: float) -> Row:
    coupon_id = new_coupon(1, IssueMode.ASYNC)
    url = f"{stack.url}/v2/issue-async"
    body = json.dumps({"couponId": coupon_id, "userId": 0}).replace("0}", "{user}}")
    # Sell it out, then every request is refused from the cached sold-out flag.
    stack.invoke(
        "IssueAsyncFunction", http_api_event("POST", "/v2/issue-async", body={"couponId": coupon_id, "userId": 1})
    )
    stack.warm("IssueAsyncFunction", connections)
    ours = warmed_wrk(url, tokens, "POST", body, connections=connections, seconds=seconds, stack=stack)
    expect_only(ours, 409, "V2 refused")
    with floor_server(new_coupon(1, IssueMode.ASYNC)) as floor_url:
        floor_issue = f"{floor_url}/v2/issue-async"
        floor = warmed_wrk(floor_issue, tokens, "POST", body, connections=connections, seconds=seconds)
    expect_only(floor, 409, "floor")
    check_redis(coupon_id, 1)  # the one seat sold before; no request since took one
    return ratio_row(
        f"V2 refused from the sold-out flag, {connections} connections",
        ours.per_second,
        floor.per_second,
        unit="req/s",
        target=0.35,
        note="floor = bare uvicorn, 2 workers, one EVALSHA per request",
        ours_p99_ms=ours.p99_ms,
        floor_p99_ms=floor.p99_ms,
    )


def v1_hot_coupon(stack: BackgroundStack, tokens: Tokens, seconds: float) -> Row:
    connections = 16
    coupon_id = new_coupon(None, IssueMode.SYNC, warm=False)
    body = json.dumps({"couponId": coupon_id, "userId": 0}).replace("0}", "{user}}")
    warm = new_coupon(None, IssueMode.SYNC, warm=False)
    warm_body = json.dumps({"couponId": warm, "userId": 0}).replace("0}", "{user}}")
    stack.warm("IssueSyncFunction", connections)
    wrk(
        f"{stack.url}/v1/issue", tokens, "POST", warm_body, connections=connections, seconds=1
    )  # warm-up on another coupon
    stack.settle()
    ours = wrk(f"{stack.url}/v1/issue", tokens, "POST", body, connections=connections, seconds=seconds)
    expect_only(ours, 200, "V1")
    stack.settle()
    check_mysql_after_load(coupon_id, ours.count, connections)

    raw_coupon = new_coupon(None, IssueMode.SYNC, warm=False)

    def make() -> Callable[[int], None]:
        local = threading.local()

        def call(user: int) -> None:
            connection = getattr(local, "connection", None) or raw_mysql()
            local.connection = connection
            with connection.cursor() as cursor:
                cursor.execute(SYNC_ISSUE_BATCH, {"coupon_id": raw_coupon, "user_id": user, "now": utc_now()})
                while cursor.nextset():
                    pass

        return call

    raw = drive_processes(make, 4, 4, seconds)
    check_mysql(raw_coupon, raw.count)
    return ratio_row(
        f"V1 issue, one hot coupon, {connections} connections",
        ours.per_second,
        raw.per_second,
        unit="issues/s",
        target=0.60,
        note="floor = the same one-round-trip transaction from PyMySQL, 16 clients in 4 processes",
        ours_p99_ms=ours.p99_ms,
    )


HAMMER_CONNECTIONS = 8
OTHERS = 4


def v1_body(coupon_id: int) -> str:
    return json.dumps({"couponId": coupon_id, "userId": 0}).replace("0}", "{user}}")


@dataclass
class Hammered:
    others: WrkResult
    hammer: WrkResult
    row_lock_waits: int  # InnoDB's count of lock waits during the run: requests queued behind a holder


def v1_beside_the_hammer(stack: BackgroundStack, tokens: Tokens, hammer: Tokens, seconds: float) -> Hammered:
    """Other users' V1 issues on one hot coupon while one user hammers it."""
    url, coupon_id = f"{stack.url}/v1/issue", new_coupon(None, IssueMode.SYNC)
    waits_before = mysql_status("Innodb_row_lock_waits")
    stack.warm("IssueSyncFunction", OTHERS + HAMMER_CONNECTIONS)
    command = wrk_command(url, hammer, "POST", v1_body(coupon_id), connections=HAMMER_CONNECTIONS, seconds=seconds + 2)
    hammering = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)  # noqa: S603 - wrk, our arguments
    time.sleep(1)  # the hammer is at full speed before the others start
    beside = wrk(url, tokens, "POST", v1_body(coupon_id), connections=OTHERS, seconds=seconds)
    out, _ = hammering.communicate(timeout=seconds + 120)
    hammered = parse_wrk(out)
    stack.settle()
    waits = mysql_status("Innodb_row_lock_waits") - waits_before
    # The others share the route's throttle with the hammer: past its rate they hear its 429 too.
    if set(beside.statuses) - {200, 429} or not beside.statuses.get(200):
        raise InvariantError(f"V1 beside the hammer: the others heard {beside.statuses}")
    if set(hammered.statuses) - {200, 409, 429}:
        raise InvariantError(f"the hammering user heard {hammered.statuses}")
    issued = beside.statuses[200] + hammered.statuses.get(200, 0)
    check_mysql_after_load(coupon_id, issued, OTHERS + HAMMER_CONNECTIONS)
    return Hammered(beside, hammered, waits)


def v1_beside_a_hammering_user(stack: BackgroundStack, tokens: Tokens, hammer: Tokens, seconds: float) -> list[Row]:
    """Other users' V1 latency on one hot coupon, alone, beside one user hammering the same coupon from 8
    connections, and beside the same hammer on a stack without a fair share (IssueFairShare=0): past its
    share the hammerer hears 429 before the row lock, so nobody queues behind it. On this machine the
    hammer's refused invocations still take CPU from everyone's (the first ratio); in AWS they run in
    containers of their own."""
    url = f"{stack.url}/v1/issue"
    stack.warm("IssueSyncFunction", OTHERS + HAMMER_CONNECTIONS)
    wrk(url, tokens, "POST", v1_body(new_coupon(None, IssueMode.SYNC)), connections=OTHERS, seconds=1)
    stack.settle()
    alone = wrk(url, tokens, "POST", v1_body(new_coupon(None, IssueMode.SYNC)), connections=OTHERS, seconds=seconds)
    expect_only(alone, 200, "V1 alone")
    fair = v1_beside_the_hammer(stack, tokens, hammer, seconds)
    beside, hammered = fair.others, fair.hammer
    share = services().settings.issue_fair_share_per_s
    admitted = hammered.statuses.get(200, 0) + hammered.statuses.get(409, 0)
    if admitted > share * (seconds + 4):
        raise InvariantError(f"the hammering user got past its fair share: {hammered.statuses}")
    unlimited_options = StackOptions(port=free_port(), workers=False, parameters={"IssueFairShare": "0"})
    unlimited = BackgroundStack(LocalDeployment(options=unlimited_options)).start()
    try:
        unfair = v1_beside_the_hammer(unlimited, tokens, hammer, seconds)
    finally:
        unlimited.stop()

    def answers(result: WrkResult) -> str:
        return ", ".join(f"{n:,} x {status}" for status, n in sorted(result.statuses.items()))

    return [
        Row(
            f"V1 others' p50 alone vs beside one user at {hammered.per_second:,.0f} req/s, {OTHERS} connections",
            alone.p50_ms,
            beside.p50_ms,
            "ms",
            "report",
            None,
            f"ratio = alone / beside (1.0: the hammer costs others nothing); the hammerer heard {answers(hammered)}",
            {"alone_p99_ms": alone.p99_ms, "beside_p99_ms": beside.p99_ms, "hammer_admitted": admitted},
        ),
        Row(
            f"V1 others' p50 beside the hammer: fair share {share}/s vs none, {OTHERS} connections",
            beside.p50_ms,
            unfair.others.p50_ms,
            "ms",
            "report",
            None,
            f"ratio = with / without; without it the hammerer heard {answers(unfair.hammer)}",
            {"with_p99_ms": beside.p99_ms, "without_p99_ms": unfair.others.p99_ms},
        ),
        Row(
            f"V1 row-lock waits per 1,000 others' issues beside the hammer: fair share {share}/s vs none",
            1000 * fair.row_lock_waits / max(1, beside.statuses.get(200, 0)),
            1000 * unfair.row_lock_waits / max(1, unfair.others.statuses.get(200, 0)),
            "waits",
            "report",
            None,
            "InnoDB's row lock waits (Innodb_row_lock_waits) during each run: how often a request queued behind "
            "another on the coupon's row",
            {"with_waits": fair.row_lock_waits, "without_waits": unfair.row_lock_waits},
        ),
    ]


def mysql_status(name: str) -> int:
    """One of the MySQL server's global counters, from every client (the benchmark runs nothing else)."""
    connection = raw_mysql()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW GLOBAL STATUS LIKE %s", (name,))
            row = cursor.fetchone()
    finally:
        connection.close()
    assert row is not None
    return int(row[1])


def mysql_statements() -> int:
    return mysql_status("Questions")


def status_polls(stack: BackgroundStack, tokens: Tokens, connections: int, seconds: float) -> list[Row]:
    """The polling storm after a sale: every user polls the status route of an outcome already final. The
    answers must be 200, or the route throttle's 429; MySQL should hardly notice."""
    coupon_id = new_coupon(None, IssueMode.ASYNC)
    issued_through_redis(coupon_id, range(tokens.first_user, tokens.first_user + tokens.count))
    check_mysql(coupon_id, tokens.count)
    url = f"{stack.url}/coupons/{coupon_id}/issues/USER_ID"
    stack.warm("CouponsFunction", 30)
    wrk(url, tokens, "GET", "-", connections=connections, seconds=1)
    stack.settle()
    stats = stack.stack.runtime.stats("CouponsFunction")
    stats.peak_concurrency, reported = 0, len(stats.duration_ms)
    before = mysql_statements()
    ours = wrk(url, tokens, "GET", "-", connections=connections, seconds=seconds)
    stack.settle()
    statements = mysql_statements() - before - 1  # less this function's own SHOW
    durations = sorted(stats.duration_ms[reported:])
    if set(ours.statuses) - {200, 429}:
        raise InvariantError(f"status polls: expected 200 or 429 only, got {ours.statuses}")
    with floor_server(coupon_id) as floor_url:
        floor = wrk(f"{floor_url}/coupons/{coupon_id}", tokens, "GET", "-", connections=connections, seconds=seconds)
    per_thousand = 1000 * statements / ours.count
    answered = ours.statuses.get(200, 0) / (ours.count / ours.per_second)
    return [
        ratio_row(
            f"status polls of final outcomes, {connections} connections",
            answered,
            floor.per_second,
            unit="200s/s",
            target=None,
            note="floor = bare uvicorn, 2 workers, one Redis GET per request",
            statuses=ours.statuses,
            ours_p99_ms=ours.p99_ms,
            # The route throttle's inputs as this runtime saw them (tests/infrastructure/test_template.py).
            duration_p99_ms=durations[int(len(durations) * 0.99)] if durations else None,
            peak_concurrency=stats.peak_concurrency,
            throttles=stats.throttles,
        ),
        Row(
            "MySQL statements per 1,000 status polls of final outcomes",
            per_thousand,
            1000.0,
            "statements",
            "<= 10",
            per_thousand <= 10,
            "raw = one read per poll, what answering from MySQL costs at the least",
            {"polls": ours.count, "statements": statements},
        ),
    ]


def v2_reserve_with_send(stack: BackgroundStack, tokens: Tokens, queue_url: str, seconds: float) -> list[Row]:
    connections = 8
    coupon_id = new_coupon(None, IssueMode.ASYNC)
    body = json.dumps({"couponId": coupon_id, "userId": 0}).replace("0}", "{user}}")
    stack.warm("IssueAsyncFunction", connections)
    ours = wrk(f"{stack.url}/v2/issue-async", tokens, "POST", body, connections=connections, seconds=seconds)
    expect_only(ours, 202, "V2 reserve")
    stack.settle()
    check_redis_after_load(coupon_id, ours.count, connections)

    local = threading.local()

    seal = services().adapters.seal
    role = role_credentials("IssueAsyncFunctionRole")

    def send(user: int) -> None:
        # The same path as the function's send: its role's keys, the IAM gateway, verified TLS, signed.
        sqs = getattr(local, "sqs", None) or sqs_client(stack.stack.aws_url, role, str(LOCAL_CA))
        local.sqs = sqs
        body = seal.seal(ReservationMessage(10**9, user, uuid.uuid4().hex, int(time.time() * 1000)))
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)

    raw = drive(send, connections, seconds)
    sqs_client().purge_queue(QueueUrl=queue_url)
    return [
        ratio_row(
            f"V2 reserve with the SQS send, {connections} connections",
            ours.per_second,
            raw.per_second,
            unit="req/s",
            target=None,
            note="floor = signed SendMessage through the IAM gateway to the emulator, 8 boto3 threads: "
            "it caps the async paths locally",
            ours_p99_ms=ours.p99_ms,
        )
    ]


def reservation_batches(coupon_id: int, count: int) -> list[dict[str, Any]]:
    """``count`` signed reservations of the coupon, their seats held in Redis as the issue path leaves them,
    as SQS events of 100 records (the event source mapping's batch size)."""
    now_ms = int(time.time() * 1000)
    seal = services().adapters.seal
    messages = []
    for user in range(1, count + 1):
        services().adapters.seats.reserve(PendingReservation(coupon_id, user, "t", now_ms), count)
        body = seal.seal(ReservationMessage(coupon_id, user, "t", now_ms))
        messages.append({"MessageId": uuid.uuid4().hex, "ReceiptHandle": "r", "Body": body})
    queue = "arn:aws:sqs:us-east-1:000000000000:bench"
    return [sqs_event(queue, messages[i : i + 100]) for i in range(0, count, 100)]


def batch_durations(stack: BackgroundStack, events: list[dict[str, Any]]) -> list[float]:
    """Each batch's REPORT Duration in the function's warm container; every record persisted."""
    stack.invoke("BatchPersistFunction", WARM_UP_BATCH)
    stats = stack.stack.runtime.stats("BatchPersistFunction")
    reported = len(stats.duration_ms)
    for event in events:
        response = stack.invoke("BatchPersistFunction", event)
        if response != {"batchItemFailures": []}:
            raise InvariantError(f"batch_persist reported failures: {response}")
    return stats.duration_ms[reported:]


def persist(stack: BackgroundStack, bare: BackgroundStack, count: int) -> list[Row]:
    """batch_persist in its container, handed batches of 100 as the event source mapping does, beside the
    bare handler doing the raw bulk insert of the same batches in its own container."""
    coupon_id = new_coupon(count, IssueMode.ASYNC)
    ours_ms = statistics.median(batch_durations(stack, reservation_batches(coupon_id, count)))
    check_mysql(coupon_id, count)
    if services().adapters.ledger.pending(coupon_id) or services().adapters.ledger.uncounted([coupon_id]):
        raise InvariantError("batch_persist left reservations pending, or found seats missing")
    raw_coupon = new_coupon(count, IssueMode.ASYNC)
    raw_ms = statistics.median(batch_durations(bare, reservation_batches(raw_coupon, count)))
    check_mysql(raw_coupon, count)
    return [
        ratio_row(
            f"batch_persist in its container, {count} reservations in batches of 100 (median batch)",
            100_000 / ours_ms,
            100_000 / raw_ms,
            unit="rows/s",
            target=0.70,
            note=f"REPORT Duration a batch: ours {ours_ms:.2f} ms (seals checked, Redis told, metrics), the bare "
            f"handler's {raw_ms:.2f} ms (bodies parsed, the row locked, a bulk insert, the count, the commit)",
            ours_batch_ms=ours_ms,
            raw_batch_ms=raw_ms,
        )
    ]


# The most a reservation may wait for its row after the sale's last 202, on the template's event source settings.
DRAIN_TARGET_S = 10.0


def drain(tokens: Tokens, count: int) -> Row:
    """A sale of ``count`` seats through a stack whose SQS event source mapping runs as the template sets it
    (batch size, batching window, maximum concurrency): the seconds from the last 202 to the last row in
    MySQL. Both instants come from the rows: each is dated by its reservation (date_issued) and written at
    date_created."""
    options = StackOptions(port=free_port(), workers=True)
    sale = BackgroundStack(LocalDeployment(options=options)).start()
    try:
        coupon_id = new_coupon(count, IssueMode.ASYNC)
        sale.warm("IssueAsyncFunction", 8)
        command = wrk_command(
            f"{sale.url}/v2/issue-async", tokens, "POST", v1_body(coupon_id), connections=8, seconds=600
        )
        selling = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603 - wrk, our arguments
        try:
            deadline = time.monotonic() + 600
            while mysql_rows(coupon_id) < count:
                if time.monotonic() > deadline or selling.poll() is not None:
                    raise InvariantError(f"coupon {coupon_id}: {mysql_rows(coupon_id)} of {count} rows")
                time.sleep(0.2)
        finally:
            selling.terminate()
            selling.wait(timeout=30)
        sale.settle()
    finally:
        sale.stop()
    check_mysql(coupon_id, count)
    with services().adapters.engine.connect() as connection:
        last_202, last_row = connection.execute(  # two datetimes
            text("SELECT MAX(date_issued), MAX(date_created) FROM coupon_issues WHERE coupon_id = :c"),
            {"c": coupon_id},
        ).one()
    seconds = float((last_row - last_202).total_seconds())  # type: ignore[operator]
    return Row(
        f"drain: {count:,} reservations, the last 202 to the last row in MySQL (SQS event source as deployed)",
        seconds,
        DRAIN_TARGET_S,
        "s",
        f"<= {DRAIN_TARGET_S:.0f} s",
        seconds <= DRAIN_TARGET_S,
        "batch size 100, batching window 1 s, at most 5 batch_persist at once, as template.yaml sets them",
    )


def mysql_rows(coupon_id: int) -> int:
    with services().adapters.engine.connect() as connection:
        found = connection.execute(text("SELECT COUNT(*) FROM coupon_issues WHERE coupon_id = :c"), {"c": coupon_id})
        return int(found.scalar_one())


def v1_transaction_shapes(seconds: float) -> Row:
    """Context: the one-round-trip V1 transaction against the textbook one, both raw."""
    rates: dict[str, Rate] = {}
    for name, plain in (("one", False), ("plain", True)):
        coupon_id = new_coupon(None, IssueMode.SYNC, warm=False)

        def make(coupon_id: int = coupon_id, plain: bool = plain) -> Callable[[int], None]:
            local = threading.local()

            def call(user: int) -> None:
                connection = getattr(local, "connection", None) or raw_mysql()
                local.connection = connection
                params = {"coupon_id": coupon_id, "user_id": user, "now": utc_now()}
                with connection.cursor() as cursor:
                    if plain:
                        for statement in PLAIN_V1:
                            cursor.execute(statement, params)
                        connection.commit()
                    else:
                        cursor.execute(SYNC_ISSUE_BATCH, params)
                        while cursor.nextset():
                            pass

            return call

        rates[name] = drive_processes(make, 4, 4, seconds)
        check_mysql(coupon_id, rates[name].count)
    return ratio_row(
        "V1 transaction: one round trip vs the plain FOR UPDATE one (raw both)",
        rates["one"].per_second,
        rates["plain"].per_second,
        unit="issues/s",
        target=None,
        note="ratio = gain of holding the row lock briefly",
    )


# The reservation script as it was before it refused an uncounted seat state: the completeness proof's floor.
UNPROVEN_RESERVE = RESERVE_SCRIPT.replace(
    """
if redis.call('EXISTS', KEYS[4]) == 0 then
  return 4
end""",
    "",
    1,
)


def reservation_proof(seconds: float) -> Row:
    """What the completeness proof (one EXISTS inside the reservation script) costs on the hot path: raw
    EVALSHA of the script against the same script without the check, each reserving fresh users."""
    rates: dict[str, Rate] = {}
    for name, script in (("proven", RESERVE_SCRIPT), ("unproven", UNPROVEN_RESERVE)):
        coupon_id = new_coupon(None, IssueMode.ASYNC, warm=False)

        def make(coupon_id: int = coupon_id, script: str = script) -> Callable[[int], None]:
            client = services().adapters.redis
            reserve = client.register_script(script)
            keys = reserve_keys(coupon_id)

            def call(user: int) -> None:
                if int(reserve(keys=keys, args=[user, -1, f"t|{user}"])) != 1:
                    raise InvariantError(f"user {user} not reserved")

            return call

        rates[name] = drive_processes(make, 4, 4, seconds)
        check_redis(coupon_id, rates[name].count)
    return ratio_row(
        "reservation script with its completeness proof vs without (raw EVALSHA both)",
        rates["proven"].per_second,
        rates["unproven"].per_second,
        unit="reservations/s",
        target=0.9,
        note="the proof: one EXISTS in the same script, no extra round trip",
    )


# The template's route durations for the wallet function (tests/infrastructure/test_template.py sizes its
# throttles with them): what this runtime measures should stay within them.
WALLET_ROUTE_BUDGET_MS = {
    "GET /users/{userId}/coupons": 50.0,
    "PUT /coupons/{couponId}/issues/{userId}/redemption": 20.0,
}


def wallet_routes(stack: BackgroundStack, scratch: Path, seconds: float) -> list[Row]:
    """The wallet and redemption routes through the gateway and runtime, 4 connections each: only 200s and
    the route throttles' 429s, and each route's p99 REPORT duration against the one its throttle is sized
    from."""
    users = Tokens(scratch, 900_001, 200)
    order_service = Tokens(scratch, 900_001, 200, admin=True)
    coupon_ids = [new_coupon(None, IssueMode.SYNC, warm=False) for _ in range(3)]
    issued_through_v1(coupon_ids, range(users.first_user, users.first_user + users.count))
    stack.warm("WalletFunction", 4)
    order = json.dumps({"orderId": "order-0", "orderAmount": 10**6}).replace("order-0", "order-{user}")
    calls = {
        "GET /users/{userId}/coupons": (f"{stack.url}/users/USER_ID/coupons", users, "GET", "-"),
        "PUT /coupons/{couponId}/issues/{userId}/redemption": (
            f"{stack.url}/coupons/{coupon_ids[0]}/issues/USER_ID/redemption",
            order_service,
            "PUT",
            order,
        ),
    }
    rows = []
    stats = stack.stack.runtime.stats("WalletFunction")
    for route, (url, tokens, method, body) in calls.items():
        wrk(url, tokens, method, body, connections=4, seconds=1)
        stack.settle()
        reported = len(stats.duration_ms)
        result = wrk(url, tokens, method, body, connections=4, seconds=seconds)
        stack.settle()
        if set(result.statuses) - {200, 429}:
            raise InvariantError(f"{route}: expected 200 or 429 only, got {result.statuses}")
        durations = sorted(stats.duration_ms[reported:])
        p99 = durations[int(len(durations) * 0.99)] if durations else 0.0
        budget = WALLET_ROUTE_BUDGET_MS[route]
        rows.append(
            Row(
                f"{route}: p99 REPORT duration vs the one its throttle is sized from, 4 connections",
                p99,
                budget,
                "ms",
                f"<= {budget:.0f} ms",
                p99 <= budget,
                "the throttle holds burst + rate x duration within the function's cap",
                {"statuses": result.statuses, "answered_per_s": result.per_second, "p50_ms": result.p50_ms},
            )
        )
    with services().adapters.engine.connect() as connection:
        used = connection.execute(
            text("SELECT user_id, order_id FROM coupon_issues WHERE coupon_id = :c AND date_used IS NOT NULL"),
            {"c": coupon_ids[0]},
        ).all()
    if not used or any(order != f"order-{user}" for user, order in used):
        raise InvariantError(f"coupon {coupon_ids[0]}: used by {used[:5]}, each should be by its holder's order")
    return rows


# The floor of a redemption and of its cancel: the conditional write alone, autocommitted (one round trip).
RAW_REDEEM = (
    "UPDATE coupon_issues SET date_used = %(now)s, order_id = %(order_id)s, date_updated = %(now)s "
    "WHERE coupon_id = %(coupon_id)s AND user_id = 1 AND date_used IS NULL "
    "AND (date_expire IS NULL OR %(now)s < date_expire)"
)
RAW_RESTORE = (
    "UPDATE coupon_issues SET date_used = NULL, order_id = NULL, restored_order_id = %(order_id)s, "
    "date_updated = %(now)s WHERE coupon_id = %(coupon_id)s AND user_id = 1 AND order_id = %(order_id)s "
    "AND date_used IS NOT NULL"
)


def redemption(seconds: float) -> Row:
    """A coupon redeemed by an order then given back, over and over on one row: the service (its Redis mark,
    then the write, the row read back and the commit in one MySQL round trip) against the raw conditional
    UPDATEs autocommitted, each from one client."""
    rates: dict[str, Rate] = {}
    for name in ("ours", "raw"):
        coupon_id = new_coupon(None, IssueMode.SYNC, warm=False)
        services().sync_issue.issue(coupon_id, 1)

        def make(coupon_id: int = coupon_id, name: str = name) -> Callable[[int], None]:
            if name == "ours":
                use = services().coupon_use

                def cycle(n: int) -> None:
                    use.redeem(coupon_id, 1, f"order-{n}", 10**6)
                    use.restore(coupon_id, 1, f"order-{n}")

                return cycle
            connection = raw_mysql()
            connection.autocommit(True)

            def raw_cycle(n: int) -> None:
                params = {"coupon_id": coupon_id, "order_id": f"order-{n}", "now": utc_now()}
                with connection.cursor() as cursor:
                    if cursor.execute(RAW_REDEEM, params) != 1 or cursor.execute(RAW_RESTORE, params) != 1:
                        raise InvariantError(f"order-{n}: a raw write changed no row")

            return raw_cycle

        rates[name] = drive_processes(make, 1, 1, seconds)
        with services().unit_of_work() as uow:
            held = uow.issues.find(coupon_id, 1)
        if held is None or held.date_used is not None or held.restored_order_id is None:
            raise InvariantError(f"coupon {coupon_id}: the row was not left given back: {held}")
        check_mysql(coupon_id, 1)  # the issuing side did not move
    return ratio_row(
        "redemption + cancel: the service vs the raw conditional UPDATEs (one row, one client)",
        rates["ours"].per_second,
        rates["raw"].per_second,
        unit="cycles/s",
        target=None,
        note="ours: the redemption adds a Redis mark (the status route's cache); each reads its row back",
    )


# --- the run ---------------------------------------------------------------------------------------
def fresh_account() -> LocalAccount:
    """A database, a queue and a Redis db of the benchmark's own, new for every run: no case pays for the
    rows of an earlier one."""
    os.environ["ISSUE_QUEUE_NAME"] = f"coupon-bench-{uuid.uuid4().hex[:8]}"
    account, _ = deploy_database(Settings.from_env(), os.environ["ISSUE_QUEUE_NAME"], fresh=True)
    # This process signs and sends as the functions do (the floors, the persisted batches).
    os.environ.update(ISSUE_QUEUE_URL=account.queue_url, SIGNING_SECRET_ARN=account.secret("MessageSigningSecret"))
    bootstrap.reset()
    services().adapters.redis.flushdb()
    return account


def main() -> None:
    use_local_defaults()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run that writes nothing (CI)")
    parser.add_argument("--only", nargs="+", metavar="CASE", help="run these cases only (writes nothing)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is missing: apt-get install wrk (make bench installs it)")
    seconds = 2.0 if args.quick else 8.0
    account = fresh_account()
    queue_url = account.queue_url
    stack_options = StackOptions(port=free_port(), workers=False)
    bootstrap.reset()

    users = 6_000 if args.quick else 30_000
    rows: list[Row] = []
    failed = None
    stack = BackgroundStack(LocalDeployment(options=stack_options)).start()
    bare_options = StackOptions(port=free_port(), workers=False, code=BARE_CODE)
    bare = BackgroundStack(LocalDeployment(options=bare_options)).start()
    with tempfile.TemporaryDirectory() as scratch:
        print(f"minting {users:,} user tokens ...", flush=True)
        tokens = Tokens(Path(scratch), 1, users)
        hammer = Tokens(Path(scratch), users + 1, 1)
        cases: dict[str, Callable[[], Row | list[Row]]] = {
            "cold_starts": lambda: cold_starts(stack, bare, 1 if args.quick else 3),
            "same_runtime": lambda: same_runtime(
                {"ours": stack, "bare": bare},
                same_runtime_paths(Path(scratch), tokens),
                (8,) if args.quick else (2, 8),
                seconds,
            ),
            "runtime_overhead": lambda: runtime_overhead(tokens, 2, seconds),
            "v2_refused": lambda: v2_refused_from_the_flag(stack, tokens, 16, seconds),
            "v1_hot_coupon": lambda: v1_hot_coupon(stack, tokens, seconds),
            "v1_fair_share": lambda: v1_beside_a_hammering_user(stack, tokens, hammer, seconds),
            "v1_transaction_shapes": lambda: v1_transaction_shapes(seconds),
            "reservation_proof": lambda: reservation_proof(seconds),
            "status_polls": lambda: status_polls(stack, tokens, 48, seconds),
            "v2_reserve": lambda: v2_reserve_with_send(stack, tokens, queue_url, seconds),
            "persist": lambda: persist(stack, bare, 1_000 if args.quick else 10_000),
            "drain": lambda: drain(tokens, 1_000 if args.quick else 10_000),
            "redemption": lambda: redemption(seconds),
            "wallet_routes": lambda: wallet_routes(stack, Path(scratch), seconds),
        }
        try:
            for name, case in cases.items():
                if args.only and name not in args.only:
                    continue
                measured = case()
                rows += measured if isinstance(measured, list) else [measured]
        except InvariantError as broken:
            failed = broken
        finally:
            stack.stop()
            bare.stop()
            # The cases reserve seats whose messages are purged: leave no pending work behind.
            services().adapters.redis.flushdb()
            for url in (queue_url, account.dead_letter_url):
                sqs_client().delete_queue(QueueUrl=url)
    print_table(rows)
    if failed:
        print(f"INVARIANT BROKEN: {failed}")
        raise SystemExit(1)
    if not args.quick and not args.only:
        write_results(rows)


def figure(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def print_table(rows: list[Row]) -> None:
    print(f"{'case':<78}{'ours':>10}{'floor':>10}{'ratio':>7}  {'unit':<9}{'target':<18}met")
    for row in rows:
        met = {True: "yes", False: "NO", None: "-"}[row.ok]
        numbers = f"{figure(row.ours):>10}{figure(row.raw):>10}{row.ratio:>7.2f}"
        print(f"{row.case:<78}{numbers}  {row.unit:<9}{row.target:<18}{met}")


def write_results(rows: list[Row]) -> None:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {
        "when": stamp,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "load_generator": f"wrk, {WRK_THREADS} threads",
        "rows": [{**asdict(row), "ratio": row.ratio} for row in rows],
    }
    (RESULTS / f"{stamp}.json").write_text(json.dumps(record, indent=2))
    (RESULTS / "latest.json").write_text(json.dumps(record, indent=2))
    lines = [
        f"Benchmark run {stamp} ({os.cpu_count()} cores, Python {platform.python_version()}, load from wrk)",
        "",
        "| case | ours | floor | ratio | unit | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = {True: "yes", False: "**no**", None: "-"}[row.ok]
        lines.append(
            f"| {row.case} | {figure(row.ours)} | {figure(row.raw)} | {row.ratio:.2f} | {row.unit} | {row.target} "
            f"| {met} |"
        )
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    print(f"results written to {RESULTS / 'latest.md'} and {RESULTS / (stamp + '.json')}")


if __name__ == "__main__":
    main()
