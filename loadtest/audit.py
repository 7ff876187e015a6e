"""The invariants a flash sale must keep, checked after the load stops: through the API (any deployment)
and, when the database is the local one, in MySQL too."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

Headers = Mapping[str, str]


@dataclass
class CouponTally:
    """What the load generators saw of one coupon."""

    stock: int
    asked: set[int] = field(default_factory=set)  # distinct users who asked
    won: list[int] = field(default_factory=list)  # one entry per 200/202 answer
    unanswered: int = 0  # 5xx, 429 and transport errors: users who may not have had their chance

    def merge(self, other: Mapping[str, Any]) -> None:
        """Adds a worker's share, as as_message() wrote it."""
        self.asked.update(other["asked"])
        self.won.extend(other["won"])
        self.unanswered += int(other["unanswered"])

    def as_message(self) -> dict[str, object]:
        return {"asked": sorted(self.asked), "won": self.won, "unanswered": self.unanswered}


def read(client: httpx.Client, path: str, headers: Headers) -> Any:
    """A GET's JSON; a throttled or unavailable read is asked again when Retry-After says (API Gateway's own
    429 has none: a second), as any client of the contract must."""
    while True:
        answer = client.get(path, headers=headers)
        if answer.status_code not in (429, 503):
            return answer.json()
        time.sleep(float(answer.headers.get("Retry-After", "1")))


def audit_api(
    client: httpx.Client,
    tallies: Mapping[int, CouponTally],
    admin: Headers,
    user_headers: Callable[[int], Headers],
    *,
    persist_timeout_s: float,
) -> list[str]:
    """No user answered success twice; every success ends ISSUED (nothing lost); MySQL's count equals the
    successes (nothing extra) and never exceeds the stock; a coupon enough users asked for sells out."""
    problems = []
    for coupon, tally in tallies.items():
        winners = set(tally.won)
        if len(winners) != len(tally.won):
            problems.append(f"coupon {coupon}: {len(tally.won) - len(winners)} users answered success twice")
        deadline = time.monotonic() + persist_timeout_s
        while True:  # the async paths: batch_persist catches up
            issued = int(read(client, f"/coupons/{coupon}", admin)["issuedQuantity"])
            if issued >= len(winners) or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if issued != len(winners):
            problems.append(f"coupon {coupon}: issuedQuantity {issued}, but {len(winners)} users were answered success")
        if issued > tally.stock:
            problems.append(f"coupon {coupon}: {issued} issued of {tally.stock} seats")
        if len(tally.asked) >= tally.stock and not tally.unanswered and issued != tally.stock:
            problems.append(f"coupon {coupon}: {len(tally.asked)} users asked for {tally.stock} seats, {issued} issued")

        def status(user: int, coupon_id: int = coupon) -> str:
            body = read(client, f"/coupons/{coupon_id}/issues/{user}", user_headers(user))
            return str(body.get("status", body.get("code")))

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses: dict[str, int] = {}
            for answer in pool.map(status, sorted(winners)):
                statuses[answer] = statuses.get(answer, 0) + 1
        if statuses.get("ISSUED", 0) != len(winners):
            problems.append(f"coupon {coupon}: winners' statuses {statuses}, all should be ISSUED")
    return problems


def audit_mysql(tallies: Mapping[int, CouponTally]) -> list[str]:
    """The local database: issued_quantity = rows = distinct users, and the rows are exactly the winners."""
    from sqlalchemy import text

    from couponcore.bootstrap import services

    problems = []
    with services().adapters.engine.connect() as connection:
        for coupon, tally in tallies.items():
            key = {"c": coupon}
            issued = connection.execute(text("SELECT issued_quantity FROM coupons WHERE id = :c"), key).scalar()
            found = connection.execute(text("SELECT user_id FROM coupon_issues WHERE coupon_id = :c"), key)
            rows = [int(row[0]) for row in found]
            holders = set(rows)
            if not issued == len(rows) == len(holders):
                problems.append(
                    f"MySQL coupon {coupon}: issued_quantity={issued} rows={len(rows)} users={len(holders)}"
                )
            if holders != set(tally.won):
                problems.append(
                    f"MySQL coupon {coupon}: rows and success answers differ by {len(holders ^ set(tally.won))}"
                )
    return problems
