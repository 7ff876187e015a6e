"""V1 throughput on one hot coupon: our handler against the raw PyMySQL transaction, side by side.

    python -m bench.v1_sync [--clients 16] [--seconds 5]

Cases, each on a fresh unlimited SYNC coupon, each followed by an invariant check:
  handler        the issue_sync Lambda handler, invoked in-process with payload-2.0 events
  raw-1rt        the same one-round-trip transaction (SELECT FOR UPDATE .. COMMIT in one batch) from PyMySQL
  raw-plain      the textbook transaction: FOR UPDATE, duplicate SELECT, INSERT, UPDATE, COMMIT, each a round trip
"""

from __future__ import annotations

import argparse
import itertools
import os
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pymysql
from pymysql.constants import CLIENT

os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from couponcore.adapters.repositories import SYNC_ISSUE_BATCH
from couponcore.bootstrap import container
from couponcore.config import Settings
from couponcore.domain.clock import utc_now
from couponcore.domain.coupon import IssueMode, NewCoupon
from localdev.functions import LocalFunction
from localdev.lambda_runtime import LocalLambdaContext, http_api_event

ROOT = Path(__file__).resolve().parent.parent
PLAIN_STATEMENTS = (
    "SELECT total_quantity, issued_quantity FROM coupons WHERE id = %(coupon_id)s FOR UPDATE",
    "SELECT 1 FROM coupon_issues WHERE coupon_id = %(coupon_id)s AND user_id = %(user_id)s",
    "INSERT INTO coupon_issues (coupon_id, user_id, date_issued, date_created, date_updated) "
    "VALUES (%(coupon_id)s, %(user_id)s, %(now)s, %(now)s, %(now)s)",
    "UPDATE coupons SET issued_quantity = issued_quantity + 1, date_updated = %(now)s WHERE id = %(coupon_id)s",
)


def new_coupon() -> int:
    now = utc_now()
    coupon = NewCoupon("bench", None, 0, 0, now - timedelta(hours=1), now + timedelta(hours=1), IssueMode.SYNC)
    with container().unit_of_work() as uow:
        coupon_id = uow.coupons.add(coupon, now)
        uow.commit()
    return coupon_id


def raw_connection(settings: Settings) -> pymysql.Connection:  # type: ignore[type-arg]
    return pymysql.connect(
        host=settings.db_host,
        port=settings.db_port,
        user=settings.db_user,
        password=settings.db_password,
        database=settings.db_name,
        client_flag=CLIENT.MULTI_STATEMENTS,
        autocommit=False,
    )


def run(worker: Callable[[int], None], clients: int, seconds: float) -> tuple[int, float]:
    """Each client calls worker(user_id) with fresh user ids until time runs out; returns (count, elapsed)."""
    users = itertools.count(1)
    lock = threading.Lock()
    done = [0] * clients
    stop = time.monotonic() + seconds

    def loop(index: int) -> None:
        while time.monotonic() < stop:
            with lock:
                user = next(users)
            worker(user)
            done[index] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done), time.monotonic() - started


def check_invariants(coupon_id: int, expected: int) -> None:
    with container().engine.connect() as connection:
        from sqlalchemy import text

        issued = connection.execute(text("SELECT issued_quantity FROM coupons WHERE id=:c"), {"c": coupon_id}).scalar()
        rows, users = connection.execute(
            text("SELECT COUNT(*), COUNT(DISTINCT user_id) FROM coupon_issues WHERE coupon_id=:c"), {"c": coupon_id}
        ).one()
    if not issued == rows == users == expected:
        raise SystemExit(
            f"invariant broken on coupon {coupon_id}: issued={issued} rows={rows} users={users} expected={expected}"
        )


def handler_case(clients: int, seconds: float) -> tuple[int, float, int]:
    coupon_id = new_coupon()
    function = LocalFunction("issue_sync", ROOT / "functions" / "issue_sync")
    failures = [0]

    def worker(user: int) -> None:
        event = http_api_event("POST", "/v1/issue", body={"couponId": coupon_id, "userId": user})
        if function.invoke(event, LocalLambdaContext(function_name="issue_sync"))["statusCode"] != 200:
            failures[0] += 1

    count, elapsed = run(worker, clients, seconds)
    check_invariants(coupon_id, count - failures[0])
    return count, elapsed, coupon_id


def raw_case(clients: int, seconds: float, plain: bool) -> tuple[int, float, int]:
    settings = Settings.from_env()
    coupon_id = new_coupon()
    local = threading.local()

    def worker(user: int) -> None:
        connection = getattr(local, "connection", None)
        if connection is None:
            connection = local.connection = raw_connection(settings)
        params = {"coupon_id": coupon_id, "user_id": user, "now": utc_now()}
        with connection.cursor() as cursor:
            if plain:
                for statement in PLAIN_STATEMENTS:
                    cursor.execute(statement, params)
                    cursor.fetchall()
                connection.commit()
            else:
                cursor.execute(SYNC_ISSUE_BATCH, params)
                while cursor.nextset():
                    pass

    count, elapsed = run(worker, clients, seconds)
    check_invariants(coupon_id, count)
    return count, elapsed, coupon_id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    os.environ.setdefault("DB_POOL_SIZE", str(args.clients))
    os.environ.setdefault("DB_MAX_OVERFLOW", "0")

    results = {}
    results["handler"] = handler_case(args.clients, args.seconds)
    results["raw-1rt"] = raw_case(args.clients, args.seconds, plain=False)
    results["raw-plain"] = raw_case(args.clients, args.seconds, plain=True)
    rate = {name: count / elapsed for name, (count, elapsed, _) in results.items()}
    print(f"V1 on one hot coupon, {args.clients} concurrent clients, {args.seconds:.0f} s per case")
    print(f"{'case':<12}{'issues':>10}{'issues/s':>12}")
    for name, (count, _, _) in results.items():
        print(f"{name:<12}{count:>10}{rate[name]:>12.0f}")
    print(f"ratio handler / raw-1rt      = {rate['handler'] / rate['raw-1rt']:.2f}")
    print(f"ratio raw-1rt / raw-plain    = {rate['raw-1rt'] / rate['raw-plain']:.2f}  (the gain of one round trip)")


if __name__ == "__main__":
    main()
