"""The checkout scenario: the order service redeeming issued coupons while orders race, retry and cancel.

Each round takes one holder (a user holding the scenario's coupon) for itself, so that what the round expects
is exact whatever the other rounds do: two new orders race for the coupon, every request is sent twice and
the second answer must equal the first, some orders are cancelled (and the cancel repeated), some ask with an
amount below the minimum, some cancel an order that does not hold the coupon. A 429 or a 503 is sent again
after Retry-After; what counts as an answer is the first other one. The ledger (which order holds each
coupon) is then audited against the API and, locally, MySQL: no coupon is used by two orders, none is lost.
"""

from __future__ import annotations

import random
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

Headers = Mapping[str, str]
# An answer as the audit compares them: status, code, and the order and time of the use it reports.
Answer = tuple[int, str, str | None, str | None]
MIN_AMOUNT = 10_000
CANCEL_SHARE = 0.5
LOW_AMOUNT_SHARE = 0.1
WRONG_CANCEL_SHARE = 0.1


@dataclass
class CheckoutLedger:
    """What the rounds saw; the ledger of who uses each coupon is exact, because a round owns its holder."""

    coupon: int = 0
    free: deque[int] = field(default_factory=deque)  # holders no round is using
    using: dict[int, str | None] = field(default_factory=dict)  # holder -> the order using the coupon now
    # Holders whose round was stopped midway (the run ended): the order using it is one of these, or none.
    in_doubt: dict[int, set[str | None]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    rounds: int = 0

    def expect(self, what: str, got: tuple[object, ...], wanted: tuple[object, ...]) -> None:
        if got != wanted:
            self.problems.append(f"{what}: answered {got}, expected {wanted}")


Send = Callable[[str, str, dict[str, Any] | None, dict[str, str] | None], Answer]


def answer_of(response: Any) -> Answer:
    try:
        body = response.json()
    except ValueError:
        body = {}
    code = str(body.get("code") or body.get("message") or "")
    return response.status_code, code, body.get("orderId"), body.get("dateUsed")


def run_round(ledger: CheckoutLedger, send: Send, race: Callable[[list[Callable[[], Answer]]], list[Answer]]) -> None:
    """One round on one holder: a race, the retries, maybe a cancel, maybe a refusal."""
    if not ledger.free:
        return
    user = ledger.free.popleft()
    sent: set[str | None] = {None, ledger.using[user]}
    finished = False
    try:
        _round(ledger, user, send, race, sent)
        finished = True
        ledger.rounds += 1
    finally:
        if not finished:
            ledger.in_doubt[user] = sent
        ledger.free.append(user)


def _round(
    ledger: CheckoutLedger,
    user: int,
    send: Send,
    race: Callable[[list[Callable[[], Answer]]], list[Answer]],
    sent: set[str | None],
) -> None:
    path = f"/coupons/{ledger.coupon}/issues/{user}/redemption"
    holder = ledger.using.get(user)
    orders = [f"order-{uuid.uuid4().hex[:16]}" for _ in range(2)]
    sent.update(orders)
    amount = MIN_AMOUNT + random.randrange(50_000)

    def put(order: str, order_amount: int = amount) -> Answer:
        return send("PUT", path, {"orderId": order, "orderAmount": order_amount}, None)

    answers = race([lambda order=order: put(order) for order in orders])  # type: ignore[misc]
    winners = [order for order, answer in zip(orders, answers, strict=True) if answer[0] == 200]
    if holder is None and len(winners) != 1:
        ledger.problems.append(f"user {user}: {len(winners)} of two racing orders won a free coupon: {answers}")
    if holder is not None and winners:
        ledger.problems.append(f"user {user}: order {winners} won a coupon {holder} was using")
    for order, first in zip(orders, answers, strict=True):
        ledger.expect(f"retried PUT {order}", put(order), first)
    if winners:
        holder = ledger.using[user] = winners[0]
    if holder is not None and random.random() < WRONG_CANCEL_SHARE:
        wrong = send("DELETE", path, None, {"orderId": f"order-{uuid.uuid4().hex[:16]}"})
        ledger.expect(f"cancel by another order of user {user}", wrong[:2], (409, "REDEMPTION_NOT_FOUND"))
    if holder is not None and random.random() < CANCEL_SHARE:
        cancelled = send("DELETE", path, None, {"orderId": holder})
        ledger.expect(f"cancel {holder}", cancelled[:3], (200, "RESTORED", holder))
        ledger.expect(f"repeated cancel {holder}", send("DELETE", path, None, {"orderId": holder}), cancelled)
        if cancelled[0] == 200:
            holder = ledger.using[user] = None
    if holder is None and random.random() < LOW_AMOUNT_SHARE:
        low = put(f"order-{uuid.uuid4().hex[:16]}", MIN_AMOUNT - 1)
        ledger.expect(f"too low an amount for user {user}", low, (409, "ORDER_AMOUNT_TOO_LOW", None, None))


def audit_checkout(
    client: httpx.Client, ledger: CheckoutLedger, user_headers: Callable[[int], Headers], read: Callable[..., Any]
) -> list[str]:
    """Every holder's coupon is used by exactly the order the ledger says (or free), through the API."""
    problems = list(ledger.problems)
    if not ledger.rounds:
        problems.append("no checkout round finished")
    for user, order in sorted(ledger.using.items()):
        body = read(client, f"/coupons/{ledger.coupon}/issues/{user}", user_headers(user))
        seen = (body.get("usage"), body.get("orderId"))
        if user in ledger.in_doubt:
            if seen[1] not in ledger.in_doubt[user] or (seen[0] == "USED") != (seen[1] is not None):
                problems.append(f"user {user}: the status route says {seen}, not one of its last round's orders")
            continue
        wanted = ("USED", order) if order else ("AVAILABLE", None)
        if seen != wanted:
            problems.append(f"user {user}: the status route says {seen}, the orders say {wanted}")
    return problems


def audit_checkout_mysql(ledger: CheckoutLedger) -> list[str]:
    """The local database: each row's order is the ledger's, and the issuing counts did not move."""
    from sqlalchemy import text

    from couponcore.bootstrap import services

    problems = []
    with services().adapters.engine.connect() as connection:
        key = {"c": ledger.coupon}
        rows = connection.execute(
            text("SELECT user_id, order_id, date_used FROM coupon_issues WHERE coupon_id = :c"), key
        ).all()
        issued = connection.execute(text("SELECT issued_quantity FROM coupons WHERE id = :c"), key).scalar()
    if issued != len(rows) or len(rows) < len(ledger.using):
        problems.append(f"MySQL coupon {ledger.coupon}: issued_quantity={issued}, rows={len(rows)}")
    for user, order, date_used in rows:
        if user in ledger.in_doubt:
            if (order if date_used else None) not in ledger.in_doubt[user]:
                problems.append(f"MySQL user {user}: order {order}, not one of its last round's orders")
        elif user in ledger.using and (order if date_used else None) != ledger.using[user]:
            problems.append(f"MySQL user {user}: order {order} (used {date_used}), the orders say {ledger.using[user]}")
    return problems


def wait_and_resend(send_once: Callable[[], Any]) -> Any:
    """The first answer that is not "come back later": a 429 or 503 is sent again after Retry-After, plus up to
    half of it again at random, so that clients refused together do not all come back together."""
    while True:
        response = send_once()
        if response.status_code not in (429, 503):
            return response
        time.sleep(float(response.headers.get("Retry-After") or 1) * (1 + random.random() / 2))
