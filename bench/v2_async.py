"""V2 reservation throughput: our handler against redis-py EVALSHA of the same script plus the same SQS send.

    python -m bench.v2_async [--clients 1 8] [--seconds 5]

Also measures the whole flow: how long N reservations take to be persisted in MySQL by batch_persist
fed from the queue. Needs MariaDB, Redis and the SQS emulator (make services).
"""

from __future__ import annotations

import argparse
import itertools
import os
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
os.environ.setdefault("AWS_ENDPOINT_URL", "http://127.0.0.1:4566")
os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from couponcore import bootstrap
from couponcore.adapters import redis_keys
from couponcore.adapters.issue_queue import ReservationMessage
from couponcore.adapters.reservations import RESERVE_SCRIPT
from couponcore.bootstrap import container
from couponcore.domain.clock import utc_now
from couponcore.domain.coupon import IssueMode, NewCoupon
from localdev.functions import LocalFunction
from localdev.lambda_runtime import LocalLambdaContext, http_api_event
from localdev.sqs_local import Poller, QueueSettings, create_queues, sqs_client

ROOT = Path(__file__).resolve().parent.parent


def new_coupon(total: int | None) -> int:
    now = utc_now()
    coupon = NewCoupon("bench", total, 0, 0, now - timedelta(hours=1), now + timedelta(hours=1), IssueMode.ASYNC)
    with container().unit_of_work() as uow:
        coupon_id = uow.coupons.add(coupon, now)
        uow.commit()
    container().catalog.refresh(coupon_id)
    return coupon_id


def run(worker: Callable[[int], None], clients: int, seconds: float) -> float:
    users, lock, done = itertools.count(1), threading.Lock(), [0] * clients
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
    return sum(done) / (time.monotonic() - started)


def handler_rate(clients: int, seconds: float) -> float:
    coupon_id = new_coupon(None)
    function = LocalFunction("issue_async", ROOT / "functions" / "issue_async")

    def worker(user: int) -> None:
        event = http_api_event("POST", "/v2/issue-async", body={"couponId": coupon_id, "userId": user})
        response = function.invoke(event, LocalLambdaContext(function_name="issue_async"))
        assert response["statusCode"] == 202, response

    rate = run(worker, clients, seconds)
    check_reserved(coupon_id)
    return rate


def raw_rate(clients: int, seconds: float, queue_url: str | None) -> float:
    """The same script via redis-py, then the same send via boto3 (no send when queue_url is None)."""
    coupon_id = new_coupon(None)
    redis = container().redis
    script = redis.register_script(RESERVE_SCRIPT)
    keys = [
        redis_keys.reserved_users(coupon_id),
        redis_keys.pending_reservations(coupon_id),
        redis_keys.rejected_users(coupon_id),
    ]
    local = threading.local()

    def worker(user: int) -> None:
        sqs = getattr(local, "sqs", None) or sqs_client(os.environ["AWS_ENDPOINT_URL"])
        local.sqs = sqs
        token, now_ms = uuid.uuid4().hex, int(time.time() * 1000)
        assert script(keys=keys, args=[user, -1, token, now_ms]) == 1
        if queue_url:
            sqs.send_message(
                QueueUrl=queue_url, MessageBody=ReservationMessage(coupon_id, user, token, now_ms).to_json()
            )

    rate = run(worker, clients, seconds)
    check_reserved(coupon_id)
    return rate


def check_reserved(coupon_id: int) -> None:
    reservations = container().reservations
    pending = sum(1 for _ in reservations.pending(coupon_id))
    if pending != reservations.seats_taken(coupon_id):
        raise SystemExit(f"invariant broken: {pending} pending != {reservations.seats_taken(coupon_id)} seats")


def persist_flow(count: int, queue_url: str, settings: QueueSettings) -> float:
    """Seconds from the first request until `count` reservations are rows in MySQL."""
    coupon_id = new_coupon(count)
    function = LocalFunction("issue_async", ROOT / "functions" / "issue_async")
    poller = Poller(queue_url, settings, os.environ["AWS_ENDPOINT_URL"]).start()
    started = time.monotonic()
    users = iter(range(1, count + 1))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                user = next(users, None)
            if user is None:
                return
            event = http_api_event("POST", "/v2/issue-async", body={"couponId": coupon_id, "userId": user})
            function.invoke(event, LocalLambdaContext(function_name="issue_async"))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with container().engine.connect() as connection:
        from sqlalchemy import text

        while True:
            rows = connection.execute(
                text("SELECT COUNT(*) FROM coupon_issues WHERE coupon_id=:c"), {"c": coupon_id}
            ).scalar_one()
            issued = connection.execute(
                text("SELECT issued_quantity FROM coupons WHERE id=:c"), {"c": coupon_id}
            ).scalar_one()
            connection.rollback()
            if rows == count:
                break
            if time.monotonic() - started > 300:
                raise SystemExit(f"only {rows} of {count} persisted after 300 s")
            time.sleep(0.05)
    elapsed = time.monotonic() - started
    poller.stop()
    if issued != rows:
        raise SystemExit(f"invariant broken: issued_quantity {issued} != rows {rows}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--persist", type=int, default=1000, help="reservations for the request-to-row flow")
    args = parser.parse_args()
    settings = QueueSettings.from_template(ROOT / "template.yaml")
    queue_url, _ = create_queues(f"coupon-bench-{uuid.uuid4().hex[:8]}", settings, os.environ["AWS_ENDPOINT_URL"])
    os.environ["ISSUE_QUEUE_URL"] = queue_url
    bootstrap.reset()
    print(f"V2 reservation incl. SQS send, {args.seconds:.0f} s per case")
    print(f"{'clients':>8}{'handler/s':>12}{'raw/s':>10}{'ratio':>8}{'raw EVALSHA only/s':>22}")
    for clients in args.clients:
        ours = handler_rate(clients, args.seconds)
        raw = raw_rate(clients, args.seconds, queue_url)
        script_only = raw_rate(clients, args.seconds, None)
        print(f"{clients:>8}{ours:>12.0f}{raw:>10.0f}{ours / raw:>8.2f}{script_only:>22.0f}")
    sqs_client(os.environ["AWS_ENDPOINT_URL"]).purge_queue(QueueUrl=queue_url)
    elapsed = persist_flow(args.persist, queue_url, settings)
    print(
        f"{args.persist} reservations from first request to rows in MySQL: {elapsed:.2f} s "
        f"({args.persist / elapsed:.0f} per second)"
    )


if __name__ == "__main__":
    main()
