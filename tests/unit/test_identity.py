"""Who a request acts for, from the authorizer context API Gateway adds."""

from __future__ import annotations

from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEventV2

from couponcore.api.identity import ADMIN_SCOPE, acting_user, require_admin
from couponcore.domain.errors import CouponError, ErrorCode
from localdev.jwt_local import DEFAULT_AUDIENCE, DEFAULT_ISSUER, InvalidTokenError, mint, verify
from localdev.lambda_runtime import http_api_event


def event(authorizer: dict[str, Any] | None = None) -> APIGatewayProxyEventV2:
    raw = http_api_event("POST", "/v2/issue-async", body={"couponId": 1, "userId": 42})
    if authorizer is not None:
        raw["requestContext"]["authorizer"] = authorizer
    return APIGatewayProxyEventV2(raw)


def jwt(claims: dict[str, Any]) -> dict[str, Any]:
    return {"jwt": {"claims": claims, "scopes": str(claims.get("scope", "")).split()}}


def refused(action: Any) -> ErrorCode:
    with pytest.raises(CouponError) as raised:
        action()
    return raised.value.code


def test_verified_subject_is_the_user() -> None:
    assert acting_user(event(jwt({"sub": "42"})), 42) == 42


def test_a_body_user_that_is_not_the_subject_is_forbidden() -> None:
    assert refused(lambda: acting_user(event(jwt({"sub": "42"})), 43)) is ErrorCode.FORBIDDEN


def test_without_identity_the_body_is_trusted_only_in_development(monkeypatch: pytest.MonkeyPatch) -> None:
    assert acting_user(event(), 7) == 7
    monkeypatch.setenv("REQUIRE_IDENTITY", "true")
    assert refused(lambda: acting_user(event(), 7)) is ErrorCode.FORBIDDEN


def test_admin_needs_iam_or_the_admin_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUIRE_IDENTITY", "true")
    require_admin(event({"iam": {"userArn": "arn:aws:iam::1:user/admin"}}))
    require_admin(event(jwt({"sub": "1", "scope": f"openid {ADMIN_SCOPE}"})))
    assert refused(lambda: require_admin(event(jwt({"sub": "1", "scope": "openid"})))) is ErrorCode.FORBIDDEN
    assert refused(lambda: require_admin(event())) is ErrorCode.FORBIDDEN


class TestLocalTokens:
    def test_round_trip(self) -> None:
        claims = verify(mint({"sub": "42"}), "local-development-only", DEFAULT_ISSUER, DEFAULT_AUDIENCE)
        assert claims["sub"] == "42"

    @pytest.mark.parametrize(
        ("token_claims", "secret", "ttl"),
        [
            ({"sub": "1"}, "another-key", 60),
            ({"sub": "1"}, "local-development-only", -1),
            ({"sub": "1", "aud": "someone-else"}, "local-development-only", 60),
            ({"sub": "1", "iss": "https://evil.example/"}, "local-development-only", 60),
        ],
        ids=["bad-signature", "expired", "wrong-audience", "wrong-issuer"],
    )
    def test_refused(self, token_claims: dict[str, Any], secret: str, ttl: int) -> None:
        token = mint(token_claims, secret=secret, ttl_s=ttl)
        with pytest.raises(InvalidTokenError):
            verify(token, "local-development-only", DEFAULT_ISSUER, DEFAULT_AUDIENCE)

    def test_garbage(self) -> None:
        with pytest.raises(InvalidTokenError):
            verify("not.a.token", "k", DEFAULT_ISSUER, DEFAULT_AUDIENCE)
