"""Identity end to end: the local gateway verifying JWTs the way the HttpApi authorizers do in AWS."""

from __future__ import annotations

import httpx
import pytest

from localdev.jwt_local import mint, new_key
from tests.support.http import politely
from tests.support.tokens import ADMIN, as_user

pytestmark = pytest.mark.usefixtures("clean_state")
COUPON = {
    "title": "Members only",
    "totalQuantity": 5,
    "discountAmount": 1000,
    "minAvailableAmount": 0,
    "dateIssueStart": "2020-01-01T00:00:00Z",
    "dateIssueEnd": "2099-01-01T00:00:00Z",
    "issueMode": "SYNC",
}


def test_the_subject_is_the_user_and_nobody_else(api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=10) as client:
        coupon_id = client.post("/coupons", json=COUPON, headers=ADMIN).json()["id"]
        mine = client.post("/v1/issue", json={"couponId": coupon_id, "userId": 42}, headers=as_user(42))
        assert (mine.status_code, mine.json()["code"]) == (200, "ISSUED")
        someone_else = client.post("/v1/issue", json={"couponId": coupon_id, "userId": 43}, headers=as_user(42))
        assert (someone_else.status_code, someone_else.json()["code"]) == (403, "FORBIDDEN")
        assert client.get(f"/coupons/{coupon_id}/issues/42", headers=as_user(42)).json()["status"] == "ISSUED"
        peek = client.get(f"/coupons/{coupon_id}/issues/42", headers=as_user(43))
        assert (peek.status_code, peek.json()["code"]) == (403, "FORBIDDEN")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer nonsense",
        f"Bearer {mint({'sub': '42'}, key=new_key())}",
        f"Bearer {mint({'sub': '42'}, ttl_s=-5)}",
    ],
    ids=["none", "garbage", "another-issuer-key", "expired"],
)
def test_no_verified_token_is_refused_before_any_function(api_url: str, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with httpx.Client(base_url=api_url, timeout=10) as client:
        for method, path in (("POST", "/v2/issue-async"), ("POST", "/v1/issue"), ("GET", "/coupons/1/issues/42")):
            response = client.request(method, path, json={"couponId": 1, "userId": 42}, headers=headers)
            assert (response.status_code, response.json()) == (401, {"message": "Unauthorized"}), path
        # An IAM route (admin) refuses a request without credentials the way IAM authorization does.
        unsigned = client.post("/coupons", json={}, headers=headers)
        assert (unsigned.status_code, unsigned.json()) == (403, {"message": "Forbidden"})
        assert politely(client, "GET", "/health").status_code == 200  # public (its burst is 2)


def test_admin_routes_need_the_admin_scope(api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=10) as client:
        refused = client.post("/coupons", json=COUPON, headers=as_user(42))
        assert (refused.status_code, refused.json()["code"]) == (403, "FORBIDDEN")
        created = client.post("/coupons", json=COUPON, headers=ADMIN)
        assert created.status_code == 201
        read = client.get(f"/coupons/{created.json()['id']}", headers=as_user(42))
        assert read.status_code == 403


def test_a_token_whose_user_claim_is_not_a_user_id_is_forbidden(api_url: str) -> None:
    cognito_style = {"Authorization": f"Bearer {mint({'sub': '5f0c4b2e-8d7a-4c1e-9b3a-2d6e8f1a7c90'})}"}
    with httpx.Client(base_url=api_url, timeout=10) as client:
        response = client.post("/v2/issue-async", json={"couponId": 1, "userId": 42}, headers=cognito_style)
        assert (response.status_code, response.json()["code"]) == (403, "FORBIDDEN")
        assert "sub claim is not a user id" in response.json()["comment"]


def test_development_mode_trusts_the_body(api_url_dev: str) -> None:
    with httpx.Client(base_url=api_url_dev, timeout=10) as client:
        coupon_id = client.post("/coupons", json=COUPON).json()["id"]  # admin route open, no token
        issued = client.post("/v1/issue", json={"couponId": coupon_id, "userId": 42})
        assert (issued.status_code, issued.json()["code"]) == (200, "ISSUED")


def test_the_wallet_is_the_caller_s_own_and_only_the_order_service_redeems(api_url: str) -> None:
    with httpx.Client(base_url=api_url, timeout=10) as client:
        coupon_id = client.post("/coupons", json=COUPON, headers=ADMIN).json()["id"]
        assert (
            client.post("/v1/issue", json={"couponId": coupon_id, "userId": 42}, headers=as_user(42)).status_code == 200
        )
        mine = politely(client, "GET", "/users/42/coupons", headers=as_user(42))
        assert [item["couponId"] for item in mine.json()["items"]] == [coupon_id]
        peek = politely(client, "GET", "/users/42/coupons", headers=as_user(43))
        assert (peek.status_code, peek.json()["code"]) == (403, "FORBIDDEN")
        assert politely(client, "GET", "/users/42/coupons").status_code == 401
        path = f"/coupons/{coupon_id}/issues/42/redemption"
        order = {"orderId": "order-1", "orderAmount": 100}
        by_the_user = politely(client, "PUT", path, json=order, headers=as_user(42))  # not for the user to redeem
        assert (by_the_user.status_code, by_the_user.json()["code"]) == (403, "FORBIDDEN")
        assert politely(client, "PUT", path, json=order).status_code == 403  # unsigned, as IAM answers
        redeemed = politely(client, "PUT", path, json=order, headers=ADMIN)
        assert (redeemed.status_code, redeemed.json()["code"]) == (200, "REDEEMED")
        restored = politely(client, "DELETE", path, params={"orderId": "order-1"}, headers=ADMIN)
        assert (restored.status_code, restored.json()["code"]) == (200, "RESTORED")
