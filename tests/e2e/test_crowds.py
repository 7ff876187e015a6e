"""Crowds through the local stack as deployed: a polling storm hears 200 or 429 (never a 5xx) and costs
MySQL nothing for final outcomes; one user hammering an issue route hears 429 past its fair share."""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from couponcore.bootstrap import services
from tests.support.sqs import wait_until
from tests.support.tokens import ADMIN, as_user

pytestmark = pytest.mark.usefixtures("clean_state")

SALE = {
    "title": "Storm",
    "totalQuantity": 50,
    "discountAmount": 1000,
    "minAvailableAmount": 1000,
    "dateIssueStart": "2020-01-01T00:00:00Z",
    "dateIssueEnd": "2099-01-01T00:00:00Z",
}
USERS = range(1, 51)


def mysql_statements() -> int:
    with services().adapters.engine.connect() as connection:
        return int(connection.execute(text("SHOW GLOBAL STATUS LIKE 'Questions'")).one()[1])


async def storm(api_url: str, paths: list[tuple[str, dict[str, str]]], clients: int) -> list[httpx.Response]:
    """Every path asked once, `clients` at a time, none waiting for a Retry-After (the worst crowd)."""
    queue = list(reversed(paths))
    answers: list[httpx.Response] = []
    limits = httpx.Limits(max_connections=clients)
    async with httpx.AsyncClient(base_url=api_url, timeout=30, limits=limits) as client:

        async def one_client() -> None:
            while queue:
                path, headers = queue.pop()
                answers.append(await client.get(path, headers=headers))

        await asyncio.gather(*(one_client() for _ in range(clients)))
    return answers


def test_a_polling_storm_hears_200_or_429_and_final_outcomes_cost_mysql_nothing(api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=30) as client:
        coupon_id = client.post("/coupons", json=SALE, headers=ADMIN).json()["id"]

        def reserve(user: int) -> int:
            body = {"couponId": coupon_id, "userId": user}
            return client.post("/v2/issue-async", json=body, headers=as_user(user)).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            assert set(pool.map(reserve, USERS)) == {202}

        issued: set[int] = set()

        def all_issued() -> bool:
            # A poll the route's throttle answers 429 is asked again on the next pass, as a client would.
            for user in set(USERS) - issued:
                answer = client.get(f"/coupons/{coupon_id}/issues/{user}", headers=as_user(user))
                if answer.status_code == 200 and answer.json()["status"] == "ISSUED":
                    issued.add(user)
            return issued == set(USERS)

        wait_until(all_issued, timeout_s=60, what="every reservation persisted")
    headers = {user: as_user(user) for user in USERS}
    paths = [(f"/coupons/{coupon_id}/issues/{1 + n % 50}", headers[1 + n % 50]) for n in range(1500)]
    before = mysql_statements()
    answers = asyncio.run(storm(api_url, paths, clients=48))
    statements = mysql_statements() - before
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {200, 429}, statuses
    assert statuses[200] >= 50
    assert {answer.json()["status"] for answer in answers if answer.status_code == 200} == {"ISSUED"}
    # The route throttle answers for API Gateway itself, before any function runs.
    assert {answer.text for answer in answers if answer.status_code == 429} == {'{"message": "Too Many Requests"}'}
    # Final outcomes come from Redis; the stack's own background work (a reconcile pass) may run meanwhile.
    assert statements <= 0.02 * len(answers), statements


def test_the_health_route_is_throttled_by_the_gateway_not_refused_by_lambda(api_url: str) -> None:
    answers = asyncio.run(storm(api_url, [("/health", {})] * 200, clients=32))
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) == {200, 429}, statuses  # the route's 5/s with a burst of 2, per the template
    assert statuses[429] > statuses[200]
    # The gateway counts its own answers as API Gateway's metrics do (the dashboards' 4xx and 5xx).
    families = {family.name: family for family in text_string_to_metric_families(httpx.get(f"{api_url}/metrics").text)}
    throttled = [
        sample.value
        for sample in families["apigateway_answers"].samples
        if sample.name == "apigateway_answers_total" and sample.labels == {"route": "GET /health", "status": "429"}
    ]
    assert throttled and throttled[0] >= statuses[429]


def test_one_user_hammering_v1_hears_429_past_its_fair_share(api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=30) as client:
        coupon_id = client.post("/coupons", json={**SALE, "issueMode": "SYNC"}, headers=ADMIN).json()["id"]

        def issue(_: int) -> httpx.Response:
            return client.post("/v1/issue", json={"couponId": coupon_id, "userId": 7}, headers=as_user(7))

        with ThreadPoolExecutor(max_workers=10) as pool:
            answers = list(pool.map(issue, range(20)))
        codes = Counter(answer.json().get("code") for answer in answers)
        assert codes["ISSUED"] == 1 and codes["TOO_MANY_REQUESTS"] >= 10, codes
        refused = next(answer for answer in answers if answer.status_code == 429)
        assert refused.headers["Retry-After"] == "1"
        other = client.post("/v1/issue", json={"couponId": coupon_id, "userId": 8}, headers=as_user(8))
        assert other.json()["code"] == "ISSUED"
