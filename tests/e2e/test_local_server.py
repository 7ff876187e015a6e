"""HTTP against the local API server: the contract as a client sees it."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.database import issue_rows, issued_quantity
from tests.support.sqs import wait_until

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
        created = client.post("/coupons", json=COUPON)
        assert created.status_code == 201
        coupon_id = created.json()["id"]

        def issue(user_id: int) -> httpx.Response:
            with httpx.Client(base_url=api_url, timeout=30) as own:
                return own.post("/v1/issue", json={"couponId": coupon_id, "userId": user_id})

        with ThreadPoolExecutor(max_workers=40) as pool:
            responses = list(pool.map(issue, range(1, 81)))
        statuses = sorted(r.status_code for r in responses)
        assert statuses.count(200) == 20 and statuses.count(409) == 60
        assert all(r.json()["code"] == "INVALID_COUPON_ISSUE_QUANTITY" for r in responses if r.status_code == 409)
        assert issued_quantity(coupon_id) == issue_rows(coupon_id) == 20

        winner = next(user for user, r in zip(range(1, 81), responses, strict=True) if r.status_code == 200)
        status = client.get(f"/coupons/{coupon_id}/issues/{winner}")
        assert (status.status_code, status.json()["status"]) == (200, "ISSUED")
        assert client.get(f"/coupons/{coupon_id}").json()["issuedQuantity"] == 20


def test_errors_over_http(api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=10) as client:
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


def test_no_input_makes_a_server_error(api_url: str) -> None:
    """Property-based fuzzing of every route from the OpenAPI document: only 2xx/4xx, never a 5xx."""
    schemathesis = Path(sys.executable).parent / "schemathesis"
    result = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{api_url}/openapi.json",
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


@pytest.mark.parametrize("route", ["v1", "v2"])
def test_async_reservations_reach_mysql_on_their_own(api_url: str, route: str) -> None:
    """The local server's own poller feeds batch_persist, as the event source mapping would in AWS."""
    with httpx.Client(base_url=api_url, timeout=10) as client:
        coupon_id = client.post("/coupons", json={**COUPON, "totalQuantity": 3, "issueMode": "ASYNC"}).json()["id"]
        answers = [client.post(f"/{route}/issue-async", json={"couponId": coupon_id, "userId": u}) for u in range(1, 6)]
        assert [a.status_code for a in answers] == [202, 202, 202, 409, 409]
        assert client.get(f"/coupons/{coupon_id}").json()["reservedQuantity"] == 3

        def all_issued() -> bool:
            statuses = [client.get(f"/coupons/{coupon_id}/issues/{u}").json().get("status") for u in (1, 2, 3)]
            return statuses == ["ISSUED"] * 3

        wait_until(all_issued, timeout_s=30, what="reservations persisted by the server's poller")
        coupon = client.get(f"/coupons/{coupon_id}").json()
        assert (coupon["issuedQuantity"], coupon["reservedQuantity"]) == (3, 3)
        assert client.get(f"/coupons/{coupon_id}/issues/4").status_code == 404
