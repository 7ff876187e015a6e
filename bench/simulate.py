"""A flash sale at scale on the real service layer, counted tier by tier, next to the capacity model.

    python -m bench.simulate [--requests 1000000] [--seats 100000] [--containers 4] [--threads 16] [--quick]

No HTTP: each "container" is a process with its own Container (clients, two-level cache), its threads
calling the V2 use case as the handler would, against the local MariaDB, Redis and the SQS emulator.
batch_persist's use case drains the queue meanwhile (batches of up to 100, as the event source mapping
delivers). Counted: Redis commands (INFO commandstats), SQS messages, MySQL commits and rows, the time
until every seat is in MySQL. Then a burst of made-up coupon ids and one on an ended coupon, with and
without the catalog's highest-id check, to show where load is shed. It prints the model's prediction
(docs/capacity.md) beside each measurement and fails when an invariant does not hold: rows = seats sold,
no user twice, every 202 persisted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import random
import threading
import time
import uuid
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.common import new_coupon  # sets the bench's environment (database coupon_bench, Redis db 14)
from couponcore import bootstrap
from couponcore.adapters.coupon_cache import LOCAL_TTL_S, NoIdFilter, TwoLevelCouponCatalog
from couponcore.config import Settings
from couponcore.domain.clock import utc_now
from couponcore.domain.coupon import IssueMode, NewCoupon
from couponcore.domain.errors import CouponError
from localdev.environment import use_local_defaults
from localdev.migrate import deploy_database
from localdev.sqs_local import create_queues, sqs_client
from localdev.template import Template

ROOT = Path(__file__).resolve().parent.parent
USER_RANGE = 100_000_000
PERSIST_BATCH = 100  # the event source mapping's BatchSize


@dataclass
class ContainerResult:
    outcomes: Counter[str]
    winners: list[int]
    seconds: float
    durations_ms: dict[str, list[float]]  # per request, in the use case: what a warm Lambda bills, nearly


def run_container(coupon_id: int, requests: int, threads: int, seed: int, start_at: float) -> ContainerResult:
    """One container's share of the burst (runs in its own process)."""
    container = bootstrap.services()
    service = container.async_issue
    rng = random.Random(seed)
    users = [rng.randrange(1, USER_RANGE) for _ in range(requests)]
    outcomes: Counter[str] = Counter()
    winners: list[int] = []
    lock = threading.Lock()
    chunks = [users[i::threads] for i in range(threads)]
    while time.time() < start_at:  # the start gun, shared by every container
        time.sleep(0.001)
    started = time.monotonic()

    durations: dict[str, list[float]] = {"reserved": [], "refused": []}

    def work(chunk: list[int]) -> None:
        mine: Counter[str] = Counter()
        won = []
        took: dict[str, list[float]] = {"reserved": [], "refused": []}
        for user in chunk:
            began = time.perf_counter()
            try:
                service.reserve_v2(coupon_id, user)
                mine["202 RESERVED"] += 1
                won.append(user)
                took["reserved"].append((time.perf_counter() - began) * 1000)
            except CouponError as refusal:
                mine[f"{refusal.code.value}"] += 1
                took["refused"].append((time.perf_counter() - began) * 1000)
        with lock:
            outcomes.update(mine)
            winners.extend(won)
            for kind, values in took.items():
                durations[kind].extend(values)

    pool = [threading.Thread(target=work, args=(chunk,)) for chunk in chunks]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    result = ContainerResult(outcomes, winners, time.monotonic() - started, durations)
    container.close()
    return result


def _run_container(args: tuple[int, int, int, int, float]) -> ContainerResult:
    return run_container(*args)


def redis_calls() -> Counter[str]:
    stats: dict[str, Any] = bootstrap.services().adapters.redis.info("commandstats")  # type: ignore[assignment]
    calls = Counter({name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()})
    del calls["info"]  # this very count
    return calls


def mysql_status() -> Counter[str]:
    with bootstrap.services().adapters.engine.connect() as connection:
        rows = connection.exec_driver_sql(
            "SHOW GLOBAL STATUS WHERE Variable_name IN ('Com_commit','Com_select','Innodb_rows_inserted')"
        ).all()
    return Counter({str(row[0]): int(str(row[1])) for row in rows})


def persist_until(queue_url: str, seats: int, deadline_s: float, done: threading.Event, report: dict[str, Any]) -> None:
    """batch_persist's use case on the queue: up to 100 messages a batch, deleted once persisted."""
    sqs = sqs_client()
    persist = bootstrap.services().persist
    started = time.monotonic()
    persisted, batches = 0, 0
    while persisted < seats and time.monotonic() - started < deadline_s:
        received: list[dict[str, Any]] = []
        while len(received) < PERSIST_BATCH:
            got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
            if not got:
                break
            received += got
        if not received:
            if done.is_set() and persisted >= report.get("sent", seats):
                break
            time.sleep(0.05)
            continue
        seal = bootstrap.services().adapters.seal  # only what the service signed is persisted, as in batch_persist
        outcome = persist.persist([seal.open(m["Body"]) for m in received])
        if outcome.failed_coupons:  # not deleted: SQS delivers them again after the visibility timeout
            print(f"[simulate] a batch failed and will be delivered again: {outcome.failed_coupons}", flush=True)
            continue
        for i in range(0, len(received), 10):
            entries = [{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(received[i : i + 10])]
            sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)
        persisted += outcome.inserted + outcome.already_issued
        batches += 1
    report.update(persisted=persisted, batches=batches, finished_at=time.time())


def shed_burst(requests: int) -> list[tuple[str, int, int]]:
    """Made-up ids and an ended coupon, on a warm container: MySQL and Redis commands, before and after."""
    container = bootstrap.services()
    adapters = container.adapters
    every_id_looked_up = TwoLevelCouponCatalog(
        adapters.redis, adapters.reader, adapters.seats, adapters.metrics, NoIdFilter()
    )
    made_up = [mysql_highest() + 1 + n for n in range(requests)]
    rows = []
    for label, catalog in (
        ("made-up ids, no highest-id check (before)", every_id_looked_up),
        ("made-up ids, highest-id check (after)", adapters.catalog),
    ):  # fmt: skip
        selects, redis_before = mysql_status()["Com_select"], sum(redis_calls().values())
        for coupon_id in made_up:
            catalog.get(coupon_id)
        rows.append((label, mysql_status()["Com_select"] - selects, sum(redis_calls().values()) - redis_before))
        made_up = [i + requests for i in made_up]  # fresh ids for the second pass
    now = utc_now()
    ended = NewCoupon("ended", 10, 0, 0, now - timedelta(hours=2), now - timedelta(hours=1), IssueMode.ASYNC)
    with container.unit_of_work() as uow:
        ended_id = uow.coupons.add(ended, now)
        uow.commit()
    container.adapters.catalog.get(ended_id)  # the container has seen it once
    selects, redis_before = mysql_status()["Com_select"], sum(redis_calls().values())
    for user in range(requests):
        with contextlib.suppress(CouponError):
            container.async_issue.reserve_v2(ended_id, user + 1)
    rows.append(("ended coupon (warm container)", mysql_status()["Com_select"] - selects,
                 sum(redis_calls().values()) - redis_before))  # fmt: skip
    return rows


def mysql_highest() -> int:
    return bootstrap.services().adapters.reader.highest_id()


@dataclass
class Sale:
    coupon_id: int
    seconds: float
    outcomes: Counter[str]
    winners: list[int]
    all_in_mysql_s: float
    batches: int
    durations_ms: dict[str, list[float]]
    redis: Counter[str]
    mysql: Counter[str]


def run_sale(args: argparse.Namespace) -> Sale:
    template = Template(ROOT / "template.yaml")
    name = f"coupon-simulate-{uuid.uuid4().hex[:8]}"
    queue_url, dlq_url = create_queues(name, template.queue_mapping, visibility_timeout_s=10)
    os.environ["ISSUE_QUEUE_URL"] = queue_url
    bootstrap.reset()
    coupon_id = new_coupon(args.seats, IssueMode.ASYNC)
    print(f"[simulate] {args.requests:,} V2 requests for {args.seats:,} seats: {args.containers} containers x "
          f"{args.threads} threads, users drawn from 1..{USER_RANGE:,}", flush=True)  # fmt: skip
    redis_before, mysql_before = redis_calls(), mysql_status()
    done, persisted = threading.Event(), dict[str, Any]()
    consumer = threading.Thread(
        target=persist_until, args=(queue_url, args.seats, args.persist_timeout, done, persisted)
    )
    start_at = time.time() + 3  # every container's imports and connections are made by then
    consumer.start()
    share = args.requests // args.containers
    jobs = [(coupon_id, share, args.threads, seed, start_at) for seed in range(args.containers)]
    # spawn, not fork: a container must not inherit (and then close) the parent's connections.
    with multiprocessing.get_context("spawn").Pool(args.containers) as pool:
        results = pool.map(_run_container, jobs)
    winners = [user for r in results for user in r.winners]
    persisted["sent"] = len(winners)
    done.set()
    consumer.join()
    for url in (queue_url, dlq_url):
        sqs_client().delete_queue(QueueUrl=url)
    return Sale(
        coupon_id=coupon_id,
        seconds=max(r.seconds for r in results),
        outcomes=sum((r.outcomes for r in results), Counter()),
        winners=winners,
        all_in_mysql_s=persisted["finished_at"] - start_at,
        batches=persisted["batches"],
        redis=redis_calls() - redis_before,
        mysql=mysql_status() - mysql_before,
        durations_ms={
            kind: sorted(v for r in results for v in r.durations_ms[kind]) for kind in ("reserved", "refused")
        },
    )


@dataclass
class Check:
    """A tier's count beside the model's prediction, and the range the model allows."""

    tier: str
    model: str
    low: float
    high: float
    measured: float

    @property
    def holds(self) -> bool:
        return self.low <= self.measured <= self.high


# Rows a second the persist path keeps up with at the least once the sale has ended (docs/capacity.md: one
# batch of 100 per invocation, a few invocations at once): the drain after the last 202.
DRAIN_FLOOR_ROWS_S = 2_000
DRAIN_SLACK_S = 10.0
FULL_BATCHES_FROM = 10_000


def model_checks(args: argparse.Namespace, sale: Sale, rows: int) -> list[Check]:
    in_flight = args.containers * args.threads
    repeats = sale.outcomes.get("DUPLICATED_COUPON_ISSUE", 0)
    views = args.containers * (3 + 2 * sale.seconds / LOCAL_TTL_S)
    fill = PERSIST_BATCH // 2 if args.seats >= FULL_BATCHES_FROM else 1
    drain = DRAIN_SLACK_S + args.seats / DRAIN_FLOOR_ROWS_S
    return [
        # The reservations, one script a persisted batch (it tells Redis what MySQL holds) and at most one a
        # container (its first lookup raises the highest coupon id it knows).
        Check(
            "Lua scripts (EVALSHA)",
            f"{args.seats:,} + {repeats:,} repeat users + at most {in_flight} in flight at the sell-out "
            f"+ {sale.batches:,} persisted batches + at most {args.containers} highest-id raises",
            args.seats,
            args.seats + repeats + in_flight + sale.batches + args.containers,
            sale.redis["evalsha"] + sale.redis["eval"],
        ),
        # Per container: the first lookup (highest id, then the view), the sold-out mark, a refresh per TTL.
        Check(
            "coupon view reads (GET)",
            f"about {args.containers} x (3 + 2 x {sale.seconds:.0f} s / {LOCAL_TTL_S:.0f} s) = {views:,.0f}: "
            "at least one a container, at most twice that",
            args.containers, views * 2, sale.redis["get"],
        ),
        Check("SQS messages", f"{args.seats:,} (one per seat), exactly", args.seats, args.seats, len(sale.winners)),
        Check(
            "MySQL commits (persist)",
            f"one a persisted batch: {sale.batches:,}, exactly",
            sale.batches, sale.batches, sale.mysql["Com_commit"],
        ),
        # While the sale outpaces persistence the queue fills whole batches; a short sale (QUICK) persists
        # as it goes, in partial ones.
        Check(
            "rows a persisted batch (average)",
            f"{PERSIST_BATCH} at most; at least {PERSIST_BATCH // 2} in a sale of {FULL_BATCHES_FROM:,} seats or more",
            fill, PERSIST_BATCH, rows / max(1, sale.batches),
        ),
        Check("rows", f"{args.seats:,}, exactly", args.seats, args.seats, rows),
        Check(
            "seconds from the sale's end to the last row",
            f"at most {DRAIN_SLACK_S:.0f} s + seats / {DRAIN_FLOOR_ROWS_S:,} rows/s = {drain:,.1f} s",
            0, drain, max(0.0, sale.all_in_mysql_s - sale.seconds),
        ),
    ]  # fmt: skip


def report(args: argparse.Namespace, sale: Sale) -> tuple[list[int], list[Check]]:
    """Prints the sale beside the model; returns the users holding a row and the model's checks."""
    with bootstrap.services().adapters.engine.connect() as connection:
        found = connection.exec_driver_sql("SELECT user_id FROM coupon_issues WHERE coupon_id = %s", (sale.coupon_id,))
        rows = [int(row[0]) for row in found]
    requests = sum(sale.outcomes.values())
    checks = model_checks(args, sale, len(rows))
    print(f"\nsale: {requests:,} requests in {sale.seconds:.1f} s ({requests / sale.seconds:,.0f}/s); "
          f"outcomes {dict(sale.outcomes.most_common())}")  # fmt: skip
    print(f"every seat in MySQL {sale.all_in_mysql_s:.1f} s after the start gun ({sale.batches:,} batches)")
    for kind, values in sale.durations_ms.items():
        if values:
            p50, p99 = values[len(values) // 2], values[int(len(values) * 0.99)]
            print(f"in the use case, {kind}: p50 {p50:.2f} ms, p99 {p99:.2f} ms ({len(values):,} requests)")
    print("\n| tier | model (the range it allows) | measured | within |\n|---|---|---:|---|")
    for check in checks:
        print(f"| {check.tier} | {check.model} | {check.measured:,.1f} | {'yes' if check.holds else 'NO'} |")
    top = ", ".join(f"{name} {count:,}" for name, count in sale.redis.most_common(6))
    print(f"| Redis commands in all | | {sum(sale.redis.values()):,} ({top}) |")
    burst = min(10_000, max(1_000, args.requests // 100))
    print(f"\n| a burst of {burst:,} requests on a warm container | MySQL SELECTs | Redis commands |\n|---|---:|---:|")
    for label, selects, commands in shed_burst(burst):
        print(f"| {label} | {selects:,} | {commands:,} |")
    return rows, checks


def write_result(args: argparse.Namespace, sale: Sale, checks: list[Check], problems: list[str]) -> None:
    record = {
        "when": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
        "python": platform.python_version(),
        "sale": {"requests": args.requests, "seats": args.seats, "containers": args.containers,
                 "threads": args.threads, "seconds": sale.seconds, "all_in_mysql_s": sale.all_in_mysql_s,
                 "outcomes": dict(sale.outcomes)},
        "checks": [{**asdict(check), "holds": check.holds} for check in checks],
        "problems": problems,
    }  # fmt: skip
    path = ROOT / "bench" / "results" / "simulate-latest.json"
    path.write_text(json.dumps(record, indent=2) + "\n")
    print(f"[simulate] result written to {path}")


def main() -> None:
    use_local_defaults()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1_000_000)
    parser.add_argument("--seats", type=int, default=100_000)
    parser.add_argument("--containers", type=int, default=4, help="processes, each with its own caches")
    parser.add_argument("--threads", type=int, default=16, help="requests in flight per container")
    parser.add_argument("--persist-timeout", type=float, default=1800)
    parser.add_argument("--quick", action="store_true", help="20,000 requests for 1,000 seats (CI)")
    args = parser.parse_args()
    if args.quick:
        args.requests, args.seats, args.containers, args.threads = 20_000, 1_000, 2, 8
    settings = Settings.from_env()
    account, _ = deploy_database(settings, f"coupon-simulate-{uuid.uuid4().hex[:8]}")
    # The containers (processes spawned with this environment) sign what they send with the stack's key.
    os.environ["SIGNING_SECRET_ARN"] = account.secret("MessageSigningSecret")
    sale = run_sale(args)
    for url in (account.queue_url, account.dead_letter_url):
        sqs_client().delete_queue(QueueUrl=url)
    rows, checks = report(args, sale)
    with bootstrap.services().adapters.engine.connect() as connection:
        issued = connection.exec_driver_sql("SELECT issued_quantity FROM coupons WHERE id = %s", (sale.coupon_id,))
        issued_quantity = int(issued.scalar_one())
    sold = min(args.seats, len(set(sale.winners)))
    problems = []
    if len(sale.winners) != len(set(sale.winners)):
        problems.append(f"{len(sale.winners) - len(set(sale.winners))} users answered 202 twice")
    if not len(rows) == issued_quantity == len(set(rows)) == sold:
        problems.append(f"rows {len(rows)}, issued_quantity {issued_quantity}, distinct {len(set(rows))}, sold {sold}")
    if set(rows) != set(sale.winners):
        problems.append(f"rows and 202 answers differ by {len(set(rows) ^ set(sale.winners))} users")
    problems += [
        f"{c.tier}: {c.measured:,.1f} outside the model's {c.low:,.1f}..{c.high:,.1f}" for c in checks if not c.holds
    ]
    if not args.quick:
        write_result(args, sale, checks, problems)
    if problems:
        raise SystemExit("[simulate] INVARIANTS OR MODEL FAILED: " + "; ".join(problems))
    print(
        f"\n[simulate] invariants hold: {len(rows):,} rows = issued_quantity = seats sold; nobody twice; "
        "every 202 in MySQL"
    )


if __name__ == "__main__":
    main()
