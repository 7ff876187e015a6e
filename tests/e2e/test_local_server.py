"""HTTP against the local stack as deployed (identity on, each function in its own containers): the
contract as a client sees it."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from couponcore.domain.issue_route import IssueRoute
from tests.support.database import issue_rows, issued_quantity
from tests.support.sqs import wait_until
from tests.support.tokens import ADMIN, as_user

pytestmark = pytest.mark.usefixtures("clean_state")

COUPON = {
    "title": "Launch day",
    "totalQuantity": 20,
    "discountAmount": 3000,
    "minAvailableAmount": 20000,
    "dateIssueStart": "2020-01-01T00:00:00Z",
    "dateIssueEnd": "2099-01-01T00:00:00Z",
    "issueMode": "SYNC",
}


def test_a_flash_sale_over_http(api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=10) as client:
        created = client.post("/coupons", json=COUPON, headers=ADMIN)
        assert created.status_code == 201
        coupon_id = created.json()["id"]

        def issue(user_id: int) -> httpx.Response:
            with httpx.Client(base_url=api_url, timeout=30) as own:
                body = {"couponId": coupon_id, "userId": user_id}
                return own.post("/v1/issue", json=body, headers=as_user(user_id))

        # 12 at once: 12 IssueSyncFunction containers, each with the template's pool of one connection.
        with ThreadPoolExecutor(max_workers=12) as pool:
            responses = list(pool.map(issue, range(1, 81)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(200) == 20 and statuses.count(409) == 60
        assert all(r.json()["code"] == "INVALID_COUPON_ISSUE_QUANTITY" for r in responses if r.status_code == 409)
        assert issued_quantity(coupon_id) == issue_rows(coupon_id) == 20

        winner = next(user for user, r in zip(range(1, 81), responses, strict=True) if r.status_code == 200)
        status = client.get(f"/coupons/{coupon_id}/issues/{winner}", headers=as_user(winner))
        assert (status.status_code, status.json()["status"]) == (200, "ISSUED")
        assert client.get(f"/coupons/{coupon_id}", headers=ADMIN).json()["issuedQuantity"] == 20


def test_errors_over_http(api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=10, headers=as_user(1)) as client:
        missing = client.post("/v1/issue", json={"couponId": 10**12, "userId": 1})
        assert (missing.status_code, missing.json()["code"]) == (404, "COUPON_NOT_EXIST")
        malformed = client.post("/v1/issue", content=b"{nope", headers={"content-type": "application/json"})
        assert (malformed.status_code, malformed.json()["code"]) == (400, "INVALID_REQUEST")
        huge = client.post("/v1/issue", content=b'{"couponId": 1, "userId": 1, "x": "' + b"a" * 9000 + b'"}')
        assert (huge.status_code, huge.json()["code"]) == (400, "INVALID_REQUEST")
        binary = client.post("/v1/issue", content=b"\xff\xfe\xfd")
        assert (binary.status_code, binary.json()["code"]) == (400, "INVALID_REQUEST")
        unknown = client.get("/no/such/route")
        assert unknown.status_code == 404


def test_openapi_and_health(api_url: str) -> None:
    assert httpx.get(f"{api_url}/health").json()["status"] == "UP"
    document = httpx.get(f"{api_url}/openapi.json").json()
    assert document["openapi"].startswith("3.")


def test_no_input_makes_a_server_error(api_url_dev: str) -> None:
    """Property-based fuzzing of every route from the OpenAPI document: only 2xx/4xx, never a 5xx.
    (Development identity mode, so that the bodies reach the functions' own validation.)"""
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{api_url_dev}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "--seed",
            "20261126",
            "--workers",
            "4",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.parametrize("route", [IssueRoute.V1_ASYNC, IssueRoute.V2])
def test_async_reservations_reach_mysql_on_their_own(api_url: str, route: IssueRoute) -> None:
    """The stack's own event source mapping feeds batch_persist, as it would in AWS."""
    with httpx.Client(base_url=api_url, timeout=10) as client:
        coupon = {**COUPON, "totalQuantity": 3, "issueMode": "ASYNC"}
        coupon_id = client.post("/coupons", json=coupon, headers=ADMIN).json()["id"]
        answers = [
            client.post(route.path, json={"couponId": coupon_id, "userId": u}, headers=as_user(u)) for u in range(1, 6)
        ]
        assert [a.status_code for a in answers] == [202, 202, 202, 409, 409]
        assert client.get(f"/coupons/{coupon_id}", headers=ADMIN).json()["reservedQuantity"] == 3

        def status_of(user: int) -> httpx.Response:
            return client.get(f"/coupons/{coupon_id}/issues/{user}", headers=as_user(user))

        def all_issued() -> bool:
            return [status_of(u).json().get("status") for u in (1, 2, 3)] == ["ISSUED"] * 3

        wait_until(all_issued, timeout_s=30, what="reservations persisted by the stack's event source mapping")
        coupon_view = client.get(f"/coupons/{coupon_id}", headers=ADMIN).json()
        assert (coupon_view["issuedQuantity"], coupon_view["reservedQuantity"]) == (3, 3)
        assert status_of(4).status_code == 404


def counter_values(api_url: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    families = text_string_to_metric_families(httpx.get(f"{api_url}/metrics").text)
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in families
        for sample in family.samples
        if sample.name == name
    }


def test_metrics_of_every_container_reach_the_prometheus_view(api_url: str) -> None:
    """The functions' EMF records, read from their containers' logs, become the gateway's /metrics."""
    with httpx.Client(base_url=api_url, timeout=10) as client:
        coupon_id = client.post("/coupons", json={**COUPON, "issueMode": "ASYNC"}, headers=ADMIN).json()["id"]
        key = (("outcome", "RESERVED"), ("route", "v2"))
        before = counter_values(api_url, "coupon_issue_requests_total").get(key, 0.0)
        for user in (101, 102, 103):
            body = {"couponId": coupon_id, "userId": user}
            assert client.post("/v2/issue-async", json=body, headers=as_user(user)).status_code == 202
        # A record is read from the container's log just after its answer: allow it a moment.
        wait_until(
            lambda: counter_values(api_url, "coupon_issue_requests_total").get(key, 0.0) == before + 3,
            timeout_s=5,
            what="three reservations counted in /metrics",
        )
