"""What every benchmark case shares: the environment, fresh coupons, a bounded client loop, invariants."""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from localdev.environment import LOCAL_DEFAULTS

for _name, _value in {
    **LOCAL_DEFAULTS,
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "DB_POOL_SIZE": "32",
    "DB_MAX_OVERFLOW": "32",
}.items():
    os.environ.setdefault(_name, _value)
# Always their own: the benchmark drops its database and flushes its Redis db before a run, so an exported
# DB_NAME=coupon (the development database) must not become its target.
os.environ.update(DB_NAME="coupon_bench", REDIS_DB="14")

import pymysql  # noqa: E402
from pymysql.constants import CLIENT  # noqa: E402
from sqlalchemy import text  # noqa: E402

from couponcore.adapters.mysql import tls_arguments  # noqa: E402
from couponcore.bootstrap import services  # noqa: E402
from couponcore.config import Settings  # noqa: E402
from couponcore.domain.clock import utc_now  # noqa: E402
from couponcore.domain.coupon import IssueMode, NewCoupon  # noqa: E402
from couponcore.domain.reservation import PendingReservation, ReservationMessage  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


class InvariantError(Exception):
    """A fast wrong answer is a failure, not a result."""


@dataclass
class Rate:
    count: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0


def new_coupon(total: int | None, mode: IssueMode, *, warm: bool = True) -> int:
    now = utc_now()
    coupon = NewCoupon("bench", total, 0, 0, now - timedelta(hours=1), now + timedelta(hours=1), mode)
    with services().unit_of_work() as uow:
        coupon_id = uow.coupons.add(coupon, now)
        uow.commit()
    services().recount.count_new(coupon_id)  # its seats counted, as creating it through the API does
    if warm:
        services().adapters.catalog.refresh(coupon_id)
    return coupon_id


def sold_out_coupon() -> int:
    """An ASYNC coupon of one seat, taken (by user 0): every reservation after is refused."""
    coupon_id = new_coupon(1, IssueMode.ASYNC)
    services().adapters.seats.reserve(PendingReservation(coupon_id, 0, "t", int(time.time() * 1000)), 1)
    return coupon_id


def issued_through_redis(coupon_id: int, users: range) -> None:
    """Each user's seat reserved in Redis, then persisted as batch_persist does: ISSUED, known to Redis."""
    now_ms = int(time.time() * 1000)
    for user in users:
        services().adapters.seats.reserve(PendingReservation(coupon_id, user, "t", now_ms), None)
    messages = [ReservationMessage(coupon_id, user, "t", now_ms) for user in users]
    for first in range(0, len(messages), 500):
        services().persist.persist(messages[first : first + 500])


def issued_through_v1(coupon_ids: list[int], users: range) -> None:
    """Each user issued each coupon, as V1 issues it."""
    for coupon_id in coupon_ids:
        for user in users:
            services().sync_issue.issue(coupon_id, user)


def drive(worker: Callable[[int], Any], clients: int, seconds: float, max_calls: int = 10**9) -> Rate:
    """`clients` threads call worker(user) with fresh user ids until time or calls run out."""
    users, lock, done = itertools.count(1), threading.Lock(), [0] * clients
    stop = time.monotonic() + seconds

    def loop(index: int) -> None:
        while time.monotonic() < stop:
            with lock:
                user = next(users)
            if user > max_calls:
                return
            worker(user)
            done[index] += 1

    started = time.monotonic()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Rate(sum(done), time.monotonic() - started)


def drive_processes(
    make_worker: Callable[[], Callable[[int], Any]], processes: int, threads: int, seconds: float
) -> Rate:
    """Like drive(), with the clients spread over forked processes (separate interpreters, like separate
    Lambda containers), so one GIL does not bound what a path can do. Each child builds its own clients."""
    import multiprocessing

    from couponcore import bootstrap
    from couponcore.config import get_settings

    context = multiprocessing.get_context("fork")
    results: Any = context.Queue()

    def child(index: int) -> None:
        # Forget the parent's clients without closing them: their sockets belong to the parent.
        bootstrap.services.cache_clear()
        get_settings.cache_clear()
        worker = make_worker()
        offset = (index + 1) * 10_000_000
        rate = drive(lambda user: worker(offset + user), threads, seconds)
        results.put(rate.count)

    started = time.monotonic()
    children = [context.Process(target=child, args=(i,)) for i in range(processes)]
    for process in children:
        process.start()
    total = sum(results.get(timeout=seconds + 120) for _ in children)
    for process in children:
        process.join()
    return Rate(total, time.monotonic() - started)


def raw_mysql(settings: Settings | None = None) -> pymysql.Connection:  # type: ignore[type-arg]
    settings = settings or Settings.from_env()
    return pymysql.connect(
        host=settings.db_host,
        port=settings.db_port,
        user=settings.db_user,
        password=settings.db_password,
        database=settings.db_name,
        ssl=tls_arguments(settings)["ssl"],  # verified TLS, as the functions connect
        client_flag=CLIENT.MULTI_STATEMENTS,
        autocommit=False,
    )


def check_mysql(coupon_id: int, expected_rows: int) -> None:
    """rows = issued_quantity = distinct users = expected."""
    with services().adapters.engine.connect() as connection:
        issued = connection.execute(text("SELECT issued_quantity FROM coupons WHERE id=:c"), {"c": coupon_id}).scalar()
        rows, users = connection.execute(
            text("SELECT COUNT(*), COUNT(DISTINCT user_id) FROM coupon_issues WHERE coupon_id=:c"), {"c": coupon_id}
        ).one()
    if not issued == rows == users == expected_rows:
        raise InvariantError(f"coupon {coupon_id}: issued={issued} rows={rows} users={users} expected={expected_rows}")


def check_redis(coupon_id: int, expected_seats: int) -> None:
    """Every reservation holds exactly one seat and is pending until persisted."""
    seats = services().adapters.seats.seats_taken(coupon_id)
    pending = len(services().adapters.ledger.pending(coupon_id))
    if not seats == pending == expected_seats:
        raise InvariantError(f"coupon {coupon_id}: seats={seats} pending={pending} expected={expected_seats}")


def check_mysql_after_load(coupon_id: int, answered: int, connections: int) -> None:
    """After an HTTP load: rows = issued_quantity = distinct users, and every 200 has its row. Up to one
    request per connection may have been issued without its answer counted (cut off by the load's end)."""
    with services().adapters.engine.connect() as connection:
        issued = connection.execute(text("SELECT issued_quantity FROM coupons WHERE id=:c"), {"c": coupon_id}).scalar()
        rows, users = (
            int(value)
            for value in connection.execute(
                text("SELECT COUNT(*), COUNT(DISTINCT user_id) FROM coupon_issues WHERE coupon_id=:c"),
                {"c": coupon_id},
            ).one()
        )
    if not (issued == rows == users and answered <= rows <= answered + connections):
        raise InvariantError(f"coupon {coupon_id}: issued={issued} rows={rows} users={users} answered={answered}")


def check_redis_after_load(coupon_id: int, answered: int, connections: int) -> None:
    """After an HTTP load: seats = pending reservations, every 202 holds one (see check_mysql_after_load)."""
    seats = services().adapters.seats.seats_taken(coupon_id)
    pending = len(services().adapters.ledger.pending(coupon_id))
    if not (seats == pending and answered <= seats <= answered + connections):
        raise InvariantError(f"coupon {coupon_id}: seats={seats} pending={pending} answered={answered}")
