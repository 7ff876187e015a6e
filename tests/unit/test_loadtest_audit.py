"""The load test's audit must catch what it exists for: oversell, a user answered twice, a lost 202."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from loadtest.audit import CouponTally, audit_api

COUPON = 7


def fake_api(issued: int, statuses: dict[int, str]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == f"/coupons/{COUPON}":
            return httpx.Response(200, json={"issuedQuantity": issued})
        user = int(path.rsplit("/", 1)[-1])
        if user in statuses:
            return httpx.Response(200, json={"status": statuses[user]})
        return httpx.Response(404, json={"code": "ISSUE_NOT_FOUND"})

    return httpx.Client(base_url="http://api.test", transport=httpx.MockTransport(answer))


def audit(tally: CouponTally, issued: int, statuses: dict[int, str]) -> list[str]:
    headers: Callable[[int], dict[str, str]] = lambda user: {}  # noqa: E731
    return audit_api(fake_api(issued, statuses), {COUPON: tally}, {}, headers, persist_timeout_s=0)


def test_a_clean_sale_passes() -> None:
    tally = CouponTally(stock=2, asked={1, 2, 3}, won=[1, 2])
    assert audit(tally, issued=2, statuses={1: "ISSUED", 2: "ISSUED"}) == []


def test_oversell_double_answers_and_a_lost_reservation_are_each_reported() -> None:
    oversold = audit(CouponTally(stock=2, asked={1, 2, 3}, won=[1, 2, 3]), 3, {1: "ISSUED", 2: "ISSUED", 3: "ISSUED"})
    assert any("3 issued of 2 seats" in p for p in oversold)
    twice = audit(CouponTally(stock=5, asked={1, 2}, won=[1, 1, 2]), 2, {1: "ISSUED", 2: "ISSUED"})
    assert any("answered success twice" in p for p in twice)
    lost = audit(CouponTally(stock=5, asked={1, 2}, won=[1, 2]), 1, {1: "ISSUED", 2: "REJECTED"})
    assert any("issuedQuantity 1" in p for p in lost) and any("all should be ISSUED" in p for p in lost)


def test_a_coupon_enough_users_asked_for_must_sell_out_unless_some_went_unanswered() -> None:
    short = CouponTally(stock=3, asked={1, 2, 3, 4}, won=[1, 2])
    assert any("4 users asked for 3 seats, 2 issued" in p for p in audit(short, 2, {1: "ISSUED", 2: "ISSUED"}))
    short.unanswered = 5  # 503s or 429s: those users may not have had their chance
    assert audit(short, 2, {1: "ISSUED", 2: "ISSUED"}) == []
