"""Every error code of the contract has one HTTP status and a human sentence."""

from __future__ import annotations

import json
from http import HTTPStatus

import pytest

from couponcore.domain.errors import CouponError, ErrorCode
from couponcore.entrypoints.http.errors import STATUS_OF, error_response

CONTRACT = {
    ErrorCode.INVALID_REQUEST: {400, 422},
    ErrorCode.FORBIDDEN: {403},
    ErrorCode.COUPON_NOT_EXIST: {404},
    ErrorCode.ISSUE_NOT_FOUND: {404},
    ErrorCode.DUPLICATED_COUPON_ISSUE: {409},
    ErrorCode.INVALID_COUPON_ISSUE_QUANTITY: {409},
    ErrorCode.INVALID_COUPON_ISSUE_DATE: {409},
    ErrorCode.WRONG_ISSUE_MODE: {409},
    ErrorCode.ISSUE_NOT_SETTLED: {409},
    ErrorCode.COUPON_ALREADY_USED: {409},
    ErrorCode.COUPON_EXPIRED: {409},
    ErrorCode.ORDER_AMOUNT_TOO_LOW: {409},
    ErrorCode.REDEMPTION_NOT_FOUND: {409},
    ErrorCode.TOO_MANY_REQUESTS: {429},
    ErrorCode.FAIL_COUPON_ISSUE_REQUEST: {503},
}


@pytest.mark.parametrize("code", list(ErrorCode))
def test_status_and_body_follow_the_contract(code: ErrorCode) -> None:
    response = error_response(CouponError(code))
    assert response.status_code in CONTRACT[code]
    body = response.body if isinstance(response.body, dict) else json.loads(str(response.body))
    assert body["isSuccess"] is False
    assert body["code"] == code.value
    assert body["comment"].endswith(".")


def test_every_code_is_mapped() -> None:
    assert set(STATUS_OF) == set(ErrorCode) == set(CONTRACT)


def test_a_coupon_on_its_way_to_mysql_says_when_to_try_again() -> None:
    assert error_response(CouponError(ErrorCode.ISSUE_NOT_SETTLED)).headers["Retry-After"] == "1"
    assert "Retry-After" not in (error_response(CouponError(ErrorCode.COUPON_ALREADY_USED)).headers or {})


def test_unavailable_answers_carry_retry_after() -> None:
    response = error_response(CouponError(ErrorCode.FAIL_COUPON_ISSUE_REQUEST))
    assert response.status_code == HTTPStatus.SERVICE_UNAVAILABLE
    assert response.headers["Retry-After"] == "1"
