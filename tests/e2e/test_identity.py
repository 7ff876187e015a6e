"""Identity end to end: the local server verifying JWTs the way the HttpApi authorizers do in AWS."""

from __future__ import annotations

import httpx
import pytest

from localdev.jwt_local import mint

pytestmark = pytest.mark.usefixtures("clean_state")

ADMIN = {"Authorization": f"Bearer {mint({'sub': '1', 'scope': 'openid coupon/admin'})}"}
COUPON = {
    "title": "Members only",
    "totalQuantity": 5,
    "discountAmount": 1000,
    "minAvailableAmount": 0,
    "dateIssueStart": "2020-01-01T00:00:00Z",
    "dateIssueEnd": "2099-01-01T00:00:00Z",
    "issueMode": "SYNC",
}


def as_user(user: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint({'sub': str(user)})}"}


def test_the_subject_is_the_user_and_nobody_else(api_url_jwt: str) -> None:
    with httpx.Client(base_url=api_url_jwt, timeout=10) as client:
        coupon_id = client.post("/coupons", json=COUPON, headers=ADMIN).json()["id"]
        mine = client.post("/v1/issue", json={"couponId": coupon_id, "userId": 42}, headers=as_user(42))
        assert (mine.status_code, mine.json()["code"]) == (200, "ISSUED")
        someone_else = client.post("/v1/issue", json={"couponId": coupon_id, "userId": 43}, headers=as_user(42))
        assert (someone_else.status_code, someone_else.json()["code"]) == (403, "FORBIDDEN")
        assert client.get(f"/coupons/{coupon_id}/issues/42", headers=as_user(42)).json()["status"] == "ISSUED"
        peek = client.get(f"/coupons/{coupon_id}/issues/42", headers=as_user(43))
        assert (peek.status_code, peek.json()["code"]) == (403, "FORBIDDEN")


@pytest.mark.parametrize(
    "authorization", [None, "Bearer nonsense", f"Bearer {mint({'sub': '42'}, secret='stolen-key')}"]
)
def test_no_verified_token_is_refused_before_any_function(api_url_jwt: str, authorization: str | None) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    with httpx.Client(base_url=api_url_jwt, timeout=10) as client:
        for method, path in (("POST", "/v2/issue-async"), ("POST", "/v1/issue"), ("POST", "/coupons")):
            response = client.request(method, path, json={"couponId": 1, "userId": 42}, headers=headers)
            assert response.status_code == 401, (path, response.text)
        assert client.get("/health").status_code == 200  # public


def test_admin_routes_need_the_admin_scope(api_url_jwt: str) -> None:
    with httpx.Client(base_url=api_url_jwt, timeout=10) as client:
        refused = client.post("/coupons", json=COUPON, headers=as_user(42))
        assert (refused.status_code, refused.json()["code"]) == (403, "FORBIDDEN")
        created = client.post("/coupons", json=COUPON, headers=ADMIN)
        assert created.status_code == 201
        read = client.get(f"/coupons/{created.json()['id']}", headers=as_user(42))
        assert read.status_code == 403
