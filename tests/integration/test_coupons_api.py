"""Coupon admin and issue status routes, and request validation, through the real handlers."""

from __future__ import annotations

import base64
import json

import pytest

from couponcore import bootstrap
from localdev.events import http_api_event
from tests.support.lambdas import call, create_coupon, get_coupon, issue_status, issue_v1, new_coupon_id

pytestmark = pytest.mark.usefixtures("clean_state")

MAX_ID = 2**63 - 1


class TestCreateAndRead:
    def test_created_coupon_is_echoed_with_counts(self) -> None:
        response = create_coupon(title="Black Friday", totalQuantity=500, dateIssueStart="2026-11-27T09:00:00+09:00")
        assert response.status == 201
        body = response.body
        assert body["id"] > 0
        assert body["couponType"] == "FIRST_COME_FIRST_SERVED"
        assert (body["issuedQuantity"], body["reservedQuantity"]) == (0, 0)
        assert body["dateIssueStart"] == "2026-11-27T00:00:00Z"  # stored and shown in UTC
        assert get_coupon(body["id"]).body == body

    def test_issue_mode_defaults_to_async(self) -> None:
        fields = {
            "title": "t",
            "totalQuantity": 1,
            "discountAmount": 0,
            "minAvailableAmount": 0,
            "dateIssueStart": "2026-01-01T00:00:00Z",
            "dateIssueEnd": "2026-01-02T00:00:00Z",
        }
        response = call("coupons", http_api_event("POST", "/coupons", body=fields))
        assert (response.status, response.body["issueMode"]) == (201, "ASYNC")

    def test_unlimited_coupon(self) -> None:
        response = create_coupon(totalQuantity=None)
        assert (response.status, response.body["totalQuantity"]) == (201, None)

    def test_live_counts_follow_issues(self) -> None:
        coupon_id = new_coupon_id(totalQuantity=3)
        issue_v1(coupon_id, 1)
        issue_v1(coupon_id, 2)
        assert get_coupon(coupon_id).body["issuedQuantity"] == 2

    def test_unknown_coupon(self) -> None:
        response = get_coupon(MAX_ID)
        assert (response.status, response.code) == (404, "COUPON_NOT_EXIST")

    @pytest.mark.parametrize(
        "change",
        [
            {"title": ""},
            {"title": 5},
            {"totalQuantity": 0},
            {"totalQuantity": "10"},
            {"totalQuantity": 1.5},
            {"discountAmount": -1},
            {"dateIssueStart": "2026-01-01T00:00:00"},  # no offset
            {"dateIssueStart": "yesterday"},
            {"dateIssueStart": "2026-01-03T00:00:00Z", "dateIssueEnd": "2026-01-02T00:00:00Z"},
            {"dateIssueStart": "2026-01-02T00:00:00Z", "dateIssueEnd": "2026-01-02T00:00:00Z"},
            {"issueMode": "LATER"},
        ],
    )
    def test_invalid_coupons_are_refused(self, change: dict[str, object]) -> None:
        response = create_coupon(**change)
        assert response.status in (400, 422)
        assert response.code == "INVALID_REQUEST"
        assert response.body["isSuccess"] is False and response.body["comment"]


class TestIssueRequestValidation:
    @pytest.mark.parametrize(
        "body",
        [
            {},
            {"couponId": 1},
            {"userId": 1},
            {"couponId": 0, "userId": 1},
            {"couponId": -1, "userId": 1},
            {"couponId": 1, "userId": MAX_ID + 1},
            {"couponId": "1", "userId": 1},
            {"couponId": 1.0, "userId": 1},
            {"couponId": True, "userId": 1},
            {"couponId": None, "userId": 1},
            {"couponId": [1], "userId": 1},
        ],
    )
    def test_bad_ids_are_invalid_requests(self, body: dict[str, object]) -> None:
        response = call("issue_sync", http_api_event("POST", "/v1/issue", body=body))
        assert (response.status, response.code) == (422, "INVALID_REQUEST")

    @pytest.mark.parametrize("raw", ["{", "not json", "[1, 2]", "null", '"text"', "1"])
    def test_malformed_json(self, raw: str) -> None:
        response = call("issue_sync", http_api_event("POST", "/v1/issue", body=raw))
        assert response.status in (400, 422)
        assert response.code == "INVALID_REQUEST"

    def test_missing_body(self) -> None:
        response = call("issue_sync", http_api_event("POST", "/v1/issue"))
        assert (response.status, response.code) == (422, "INVALID_REQUEST")

    def test_body_over_8_kib(self) -> None:
        padded = json.dumps({"couponId": 1, "userId": 1, "pad": "x" * 9000})
        response = call("issue_sync", http_api_event("POST", "/v1/issue", body=padded))
        assert (response.status, response.code) == (400, "INVALID_REQUEST")

    def test_base64_body_that_is_not_utf8(self) -> None:
        raw = base64.b64encode(b"\xff\xfe\x00garbage").decode()
        response = call("issue_sync", http_api_event("POST", "/v1/issue", body=raw, is_base64_encoded=True))
        assert (response.status, response.code) == (400, "INVALID_REQUEST")

    def test_base64_json_body_is_accepted(self) -> None:
        coupon_id = new_coupon_id()
        raw = base64.b64encode(json.dumps({"couponId": coupon_id, "userId": 3}).encode()).decode()
        response = call("issue_sync", http_api_event("POST", "/v1/issue", body=raw, is_base64_encoded=True))
        assert response.status == 200

    def test_form_content_type_is_still_read_as_json(self) -> None:
        coupon_id = new_coupon_id()
        event = http_api_event(
            "POST",
            "/v1/issue",
            body={"couponId": coupon_id, "userId": 4},
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert call("issue_sync", event).status == 200

    def test_extra_fields_are_ignored(self) -> None:
        coupon_id = new_coupon_id()
        body = {"couponId": coupon_id, "userId": 5, "channel": "app"}
        assert call("issue_sync", http_api_event("POST", "/v1/issue", body=body)).status == 200


class TestStatusPath:
    @pytest.mark.parametrize(
        "coupon_id, user_id", [("abc", "1"), ("0", "1"), ("1", "-3"), (str(MAX_ID + 1), "1"), ("1", "1.5")]
    )
    def test_bad_path_ids(self, coupon_id: str, user_id: str) -> None:
        response = issue_status(coupon_id, user_id)
        assert (response.status, response.code) == (422, "INVALID_REQUEST")

    @pytest.mark.parametrize("raw_id", ["4\x18\u0088", "%00"])
    def test_path_the_resolver_cannot_match_is_a_bad_request(self, raw_id: str) -> None:
        response = get_coupon(raw_id)
        assert response.status in (400, 422)
        assert response.code == "INVALID_REQUEST"

    def test_redis_down_on_coupon_read_answers_503(self, monkeypatch: pytest.MonkeyPatch) -> None:
        coupon_id = new_coupon_id(issueMode="ASYNC")
        monkeypatch.setenv("REDIS_PORT", "1")
        bootstrap.reset()
        response = get_coupon(coupon_id)
        assert (response.status, response.code) == (503, "FAIL_COUPON_ISSUE_REQUEST")
