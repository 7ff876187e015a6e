"""The benchmark runner: each path of ours side by side with the raw backend doing the same work.

    python -m bench.run            # the full run; writes bench/results/latest.{json,md}
    python -m bench.run --quick    # seconds per case, nothing written: proves the benchmark still works

Every case runs on fresh coupons and ends with an invariant check; a broken invariant fails the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, text

from bench.common import (
    ROOT,
    InvariantError,
    Rate,
    check_mysql,
    check_redis,
    drive,
    drive_processes,
    new_coupon,
    raw_mysql,
)
from couponcore import bootstrap
from couponcore.adapters import redis_keys
from couponcore.adapters.issue_queue import ReservationMessage
from couponcore.adapters.mysql import database_url
from couponcore.adapters.redis_lock import RELEASE_IF_OWNER
from couponcore.adapters.repositories import SYNC_ISSUE_BATCH
from couponcore.adapters.reservations import RESERVE_SCRIPT
from couponcore.bootstrap import container
from couponcore.config import Settings
from couponcore.domain.clock import utc_now
from couponcore.domain.coupon import IssueMode
from localdev.functions import LocalFunction
from localdev.lambda_runtime import LocalLambdaContext, http_api_event
from localdev.sqs_local import Poller, QueueSettings, create_queues, sqs_client, sqs_event
from migrations.runner import migrate

RESULTS = ROOT / "bench" / "results"
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


def function(name: str) -> LocalFunction:
    return LocalFunction(name, ROOT / "functions" / name)


def invoke(fn: LocalFunction, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = fn.invoke(http_api_event(method, path, body=body), LocalLambdaContext())
    return result


# --- V1 --------------------------------------------------------------------------------------------
def v1(processes: int, threads: int, seconds: float, rounds: int) -> list[Row]:
    def ours(coupon_id: int) -> Callable[[], Callable[[int], None]]:
        def make() -> Callable[[int], None]:
            issue = function("issue_sync")

            def call(user: int) -> None:
                response = invoke(issue, "POST", "/v1/issue", {"couponId": coupon_id, "userId": user})
                assert response["statusCode"] == 200, response

            return call

        return make

    def raw(coupon_id: int, plain: bool) -> Callable[[], Callable[[int], None]]:
        def make() -> Callable[[int], None]:
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

        return make

    cases: list[tuple[str, Callable[[int], Callable[[], Callable[[int], None]]]]] = [
        ("ours", ours),
        ("raw", lambda c: raw(c, False)),
        ("plain", lambda c: raw(c, True)),
    ]
    # Interleaved rounds, median of each: this machine's noise moves a single round by a third.
    samples: dict[str, list[Rate]] = {name: [] for name, _ in cases}
    for _ in range(rounds):
        for name, make in cases:
            coupon_id = new_coupon(None, IssueMode.SYNC, warm=False)
            rate = drive_processes(make(coupon_id), processes, threads, seconds)
            check_mysql(coupon_id, rate.count)
            samples[name].append(rate)
    rates = {name: sorted(found, key=lambda r: r.per_second)[len(found) // 2] for name, found in samples.items()}
    clients = processes * threads
    return [
        Row(
            f"V1 issue, one hot coupon, {clients} clients ({processes} processes), median of {rounds}",
            rates["ours"].per_second,
            rates["raw"].per_second,
            "issues/s",
            ">= 0.80",
            rates["ours"].per_second / rates["raw"].per_second >= 0.8,
            "raw = the same one-round-trip transaction from PyMySQL",
        ),
        Row(
            "V1 transaction: one round trip vs the plain FOR UPDATE one (raw both)",
            rates["raw"].per_second,
            rates["plain"].per_second,
            "issues/s",
            "report",
            None,
            "ratio = gain of holding the lock briefly",
        ),
    ]


# --- V2 and V1-async --------------------------------------------------------------------------------
def async_paths(clients_list: list[int], seconds: float, queue_url: str) -> list[Row]:
    issue = function("issue_async")
    redis = container().redis
    reserve = redis.register_script(RESERVE_SCRIPT)
    release = redis.register_script(RELEASE_IF_OWNER)
    rows = []

    def keys(coupon_id: int) -> list[str]:
        return [
            redis_keys.reserved_users(coupon_id),
            redis_keys.pending_reservations(coupon_id),
            redis_keys.rejected_users(coupon_id),
        ]

    def ours(route: str, coupon_id: int) -> Callable[[int], None]:
        def call(user: int) -> None:
            response = invoke(issue, "POST", f"/{route}/issue-async", {"couponId": coupon_id, "userId": user})
            assert response["statusCode"] == 202, response

        return call

    def raw(route: str, coupon_id: int) -> Callable[[int], None]:
        local = threading.local()
        lock_key = redis_keys.issue_lock(coupon_id)

        def call(user: int) -> None:
            sqs = getattr(local, "sqs", None) or sqs_client(os.environ["AWS_ENDPOINT_URL"])
            local.sqs = sqs
            token, now_ms = uuid.uuid4().hex, int(time.time() * 1000)
            if route == "v1":
                owner = uuid.uuid4().hex
                while not redis.set(lock_key, owner, nx=True, px=4000):
                    time.sleep(0.001)
                try:
                    redis.scard(keys(coupon_id)[0])
                    redis.sismember(keys(coupon_id)[0], str(user))
                    assert reserve(keys=keys(coupon_id), args=[user, -1, token, now_ms]) == 1
                finally:
                    release(keys=[lock_key], args=[owner])
            else:
                assert reserve(keys=keys(coupon_id), args=[user, -1, token, now_ms]) == 1
            body = ReservationMessage(coupon_id, user, token, now_ms).to_json()
            sqs.send_message(QueueUrl=queue_url, MessageBody=body)

        return call

    for route, label in (("v2", "V2 reservation"), ("v1", "V1-async reservation")):
        for clients in clients_list:
            rates = {}
            for name, make in (("ours", ours), ("raw", raw)):
                coupon_id = new_coupon(None, IssueMode.ASYNC)
                rates[name] = drive(make(route, coupon_id), clients, seconds)
                check_redis(coupon_id, rates[name].count)
            ratio = rates["ours"].per_second / rates["raw"].per_second
            rows.append(
                Row(
                    f"{label}, {clients} clients (SQS send included)",
                    rates["ours"].per_second,
                    rates["raw"].per_second,
                    "req/s",
                    ">= 0.60",
                    ratio >= 0.6,
                    "raw = the same Redis calls via redis-py + the same send via boto3",
                )
            )
        sqs_client(os.environ["AWS_ENDPOINT_URL"]).purge_queue(QueueUrl=queue_url)
    script_only = new_coupon(None, IssueMode.ASYNC)
    rate = drive(lambda user: reserve(keys=keys(script_only), args=[user, -1, "t", 1]), 1, seconds)
    rows.append(
        Row(
            "context: raw EVALSHA of the script alone, 1 client",
            rate.per_second,
            rate.per_second,
            "calls/s",
            "report",
            None,
            "what Redis allows without the SQS emulator",
        )
    )
    return rows


# --- batch_persist ---------------------------------------------------------------------------------
def persist(count: int) -> list[Row]:
    batch = function("batch_persist")
    coupon_id = new_coupon(count, IssueMode.ASYNC)
    now_ms = int(time.time() * 1000)
    messages = [
        {
            "MessageId": uuid.uuid4().hex,
            "ReceiptHandle": "r",
            "Body": ReservationMessage(coupon_id, u, "t", now_ms).to_json(),
        }
        for u in range(1, count + 1)
    ]
    events = [
        sqs_event("arn:aws:sqs:us-east-1:000000000000:bench", messages[i : i + 100]) for i in range(0, count, 100)
    ]
    started = time.monotonic()
    for event in events:
        response = batch.invoke(event, LocalLambdaContext())
        assert response == {"batchItemFailures": []}, response
    ours = count / (time.monotonic() - started)
    check_mysql(coupon_id, count)

    raw_coupon = new_coupon(count, IssueMode.ASYNC)
    connection = raw_mysql()
    started = time.monotonic()
    with connection.cursor() as cursor:
        for first in range(1, count + 1, 100):
            users = range(first, min(first + 100, count + 1))
            now = utc_now()
            cursor.execute("SELECT issued_quantity FROM coupons WHERE id=%s FOR UPDATE", (raw_coupon,))
            cursor.executemany(
                "INSERT IGNORE INTO coupon_issues (coupon_id, user_id, date_issued, date_created, date_updated) "
                "VALUES (%s, %s, %s, %s, %s)",
                [(raw_coupon, u, now, now, now) for u in users],
            )
            cursor.execute(
                "UPDATE coupons SET issued_quantity = issued_quantity + %s WHERE id=%s", (cursor.rowcount, raw_coupon)
            )
            connection.commit()
    raw = count / (time.monotonic() - started)
    connection.close()
    check_mysql(raw_coupon, count)
    return [
        Row(
            f"batch_persist, {count} reservations in batches of 100",
            ours,
            raw,
            "rows/s",
            ">= 0.70",
            ours / raw >= 0.7,
            "raw = SELECT FOR UPDATE + bulk INSERT IGNORE + UPDATE from PyMySQL",
        )
    ]


def flow(count: int, queue_url: str) -> list[Row]:
    """From the first V2 request to the last row, with the local poller as the event source mapping."""
    settings = QueueSettings.from_template(ROOT / "template.yaml")
    coupon_id = new_coupon(count, IssueMode.ASYNC)
    poller = Poller(queue_url, settings, os.environ["AWS_ENDPOINT_URL"]).start()
    issue = function("issue_async")
    started = time.monotonic()
    drive(lambda u: invoke(issue, "POST", "/v2/issue-async", {"couponId": coupon_id, "userId": u}), 8, 600, count)
    sent = time.monotonic() - started
    with container().engine.connect() as connection:
        while (
            connection.execute(
                text("SELECT COUNT(*) FROM coupon_issues WHERE coupon_id=:c"), {"c": coupon_id}
            ).scalar_one()
            < count
        ):
            connection.rollback()
            if time.monotonic() - started > 600:
                raise InvariantError(f"{count} reservations not persisted within 600 s")
            time.sleep(0.05)
    elapsed = time.monotonic() - started
    poller.stop()
    check_mysql(coupon_id, count)
    return [
        Row(
            f"V2 flow: {count} reservations from first request to rows",
            count / elapsed,
            count / sent,
            "rows/s",
            "report",
            None,
            f"{elapsed:.1f} s in all; raw column = rate the requests were answered",
        )
    ]


# --- cold start ------------------------------------------------------------------------------------
COLD = """
import time, sys
t0 = time.perf_counter()
{body}
print((time.perf_counter() - t0) * 1000)
"""


def cold_start(repeat: int) -> list[Row]:
    def measure(body: str) -> float:
        env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'layers' / 'couponcore'}"}
        times = []
        for _ in range(repeat):
            out = subprocess.run(  # noqa: S603 - our own interpreter and code
                [sys.executable, "-c", COLD.format(body=body)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
                cwd=ROOT,
            )
            times.append(float(out.stdout.strip().splitlines()[-1]))
        return statistics.median(times)

    bare = measure("import boto3, redis, pymysql")
    rows = []
    invocations = {
        "issue_sync": 'http_api_event("POST", "/v1/issue", body={"couponId": 1, "userId": 1})',
        "issue_async": 'http_api_event("POST", "/v2/issue-async", body={"couponId": 1, "userId": 1})',
        "coupons": 'http_api_event("GET", "/coupons/1", route_key="GET /coupons/{couponId}", '
        'path_parameters={"couponId": "1"})',
        "ops": 'http_api_event("GET", "/health")',
        "batch_persist": 'sqs_event("arn:aws:sqs:us-east-1:0:q", [{"MessageId": "m", "ReceiptHandle": "r", '
        '"Body": \'{"couponId": 999999999, "userId": 1, "token": "t", "reservedAt": 1}\'}])',
        "reconcile": "{}",
    }
    for name, event in invocations.items():
        body = (
            "from localdev.lambda_runtime import LocalLambdaContext, http_api_event\n"
            "from localdev.sqs_local import sqs_event\n"
            "import importlib.util\n"
            f"spec = importlib.util.spec_from_file_location('app', '{ROOT}/functions/{name}/app.py')\n"
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
            f"m.lambda_handler({event}, LocalLambdaContext())"
        )
        ms = measure(body)
        rows.append(
            Row(
                f"cold start: {name} (import + first invocation)",
                ms,
                bare,
                "ms",
                "<= bare + 300 ms",
                ms - bare <= 300,
                "raw = python -c 'import boto3, redis, pymysql'",
            )
        )
    return rows


# --- the run ---------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run that writes nothing (CI)")
    args = parser.parse_args()
    seconds = 1.0 if args.quick else 8.0
    settings = Settings.from_env()
    # A database of its own, new for every run: no case pays for the rows of an earlier one.
    server = create_engine(database_url(settings, database=""))
    with server.connect() as connection:
        connection.execute(text(f"DROP DATABASE IF EXISTS `{settings.db_name}`"))
    server.dispose()
    migrate(settings)
    bootstrap.reset()
    container().redis.flushdb()
    queue_settings = QueueSettings.from_template(ROOT / "template.yaml")
    queue_url, _ = create_queues(f"coupon-bench-{uuid.uuid4().hex[:8]}", queue_settings, os.environ["AWS_ENDPOINT_URL"])
    os.environ["ISSUE_QUEUE_URL"] = queue_url
    bootstrap.reset()

    rows: list[Row] = []
    failed = None
    try:
        rows += cold_start(1 if args.quick else 5)  # first, while the bench database is small
        rows += v1(4, 4, seconds, rounds=1 if args.quick else 3)
        rows += async_paths([1, 8], seconds, queue_url)
        rows += persist(1000 if args.quick else 10_000)
        rows += flow(300 if args.quick else 10_000, queue_url)
    except InvariantError as broken:
        failed = broken
    finally:
        # The raw cases reserve seats whose messages are purged: leave no pending work behind.
        container().redis.flushdb()
        sqs_client(os.environ["AWS_ENDPOINT_URL"]).delete_queue(QueueUrl=queue_url)
    print_table(rows)
    if failed:
        print(f"INVARIANT BROKEN: {failed}")
        raise SystemExit(1)
    if not args.quick:
        write_results(rows)


def print_table(rows: list[Row]) -> None:
    print(f"{'case':<72}{'ours':>10}{'raw':>10}{'ratio':>7}  {'unit':<9}{'target':<18}met")
    for row in rows:
        met = {True: "yes", False: "NO", None: "-"}[row.ok]
        print(f"{row.case:<72}{row.ours:>10.0f}{row.raw:>10.0f}{row.ratio:>7.2f}  {row.unit:<9}{row.target:<18}{met}")


def write_results(rows: list[Row]) -> None:
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    record = {
        "when": stamp,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "rows": [{**asdict(row), "ratio": row.ratio} for row in rows],
    }
    (RESULTS / f"{stamp}.json").write_text(json.dumps(record, indent=2))
    (RESULTS / "latest.json").write_text(json.dumps(record, indent=2))
    lines = [
        f"Benchmark run {stamp} ({os.cpu_count()} cores, Python {platform.python_version()})",
        "",
        "| case | ours | raw | ratio | unit | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        met = {True: "yes", False: "**no**", None: "-"}[row.ok]
        lines.append(
            f"| {row.case} | {row.ours:,.0f} | {row.raw:,.0f} | {row.ratio:.2f} | {row.unit} | {row.target} | {met} |"
        )
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")
    print(f"results written to {RESULTS / 'latest.md'} and {RESULTS / (stamp + '.json')}")


if __name__ == "__main__":
    main()
