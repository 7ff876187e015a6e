"""Who a request acts for, from the authorizer context API Gateway adds."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEventV2

from couponcore.config import get_settings
from couponcore.domain.errors import CouponError, ErrorCode
from couponcore.entrypoints.http.identity import ADMIN_SCOPE, acting_user, require_admin
from localdev.events import http_api_event
from localdev.jwt_local import DEFAULT_AUDIENCE, DEFAULT_ISSUER, InvalidTokenError, mint, new_key, verify


@pytest.fixture(autouse=True)
def fresh_settings() -> Iterator[None]:
    """Settings are read once per container; each test here changes the environment first."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def settings_from(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


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
    settings_from(monkeypatch, REQUIRE_IDENTITY="false")
    assert acting_user(event(), 7) == 7
    settings_from(monkeypatch, REQUIRE_IDENTITY="true")
    assert refused(lambda: acting_user(event(), 7)) is ErrorCode.FORBIDDEN


@pytest.mark.parametrize("subject", ["5f0c4b2e-8d7a-4c1e-9b3a-2d6e8f1a7c90", "-3", "0", "4.2", "", str(2**63)])
def test_a_subject_that_is_not_a_user_id_is_forbidden(subject: str) -> None:
    assert refused(lambda: acting_user(event(jwt({"sub": subject})), 42)) is ErrorCode.FORBIDDEN


def test_the_claim_that_names_the_user_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    settings_from(monkeypatch, USER_ID_CLAIM="custom:user_id")
    cognito = {"sub": "5f0c4b2e-8d7a-4c1e-9b3a-2d6e8f1a7c90", "custom:user_id": "42"}
    assert acting_user(event(jwt(cognito)), 42) == 42
    assert refused(lambda: acting_user(event(jwt(cognito)), 43)) is ErrorCode.FORBIDDEN
    assert refused(lambda: acting_user(event(jwt({"sub": "42"})), 42)) is ErrorCode.FORBIDDEN  # claim missing


def test_only_the_configured_kind_of_cognito_token_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cognito's id and access tokens share issuer and keys: an id token must not pass for an access token."""
    assert acting_user(event(jwt({"sub": "42", "token_use": "access"})), 42) == 42
    assert refused(lambda: acting_user(event(jwt({"sub": "42", "token_use": "id"})), 42)) is ErrorCode.FORBIDDEN
    admin_id_token = {"sub": "1", "token_use": "id", "scope": f"openid {ADMIN_SCOPE}"}
    assert refused(lambda: require_admin(event(jwt(admin_id_token)))) is ErrorCode.FORBIDDEN
    settings_from(monkeypatch, TOKEN_USE="id", USER_ID_CLAIM="custom:user_id")
    cognito_id_token = {"sub": "5f0c4b2e-8d7a-4c1e-9b3a-2d6e8f1a7c90", "custom:user_id": "42", "token_use": "id"}
    assert acting_user(event(jwt(cognito_id_token)), 42) == 42
    assert acting_user(event(jwt({"custom:user_id": "42"})), 42) == 42  # other issuers carry no token_use


def test_admin_needs_iam_or_the_admin_scope(monkeypatch: pytest.MonkeyPatch) -> None:
    settings_from(monkeypatch, REQUIRE_IDENTITY="true")
    require_admin(event({"iam": {"userArn": "arn:aws:iam::1:user/admin"}}))
    require_admin(event(jwt({"sub": "1", "scope": f"openid {ADMIN_SCOPE}"})))
    assert refused(lambda: require_admin(event(jwt({"sub": "1", "scope": "openid"})))) is ErrorCode.FORBIDDEN
    assert refused(lambda: require_admin(event())) is ErrorCode.FORBIDDEN


class TestLocalTokens:
    def test_round_trip(self) -> None:
        claims = verify(mint({"sub": "42"}), DEFAULT_ISSUER, [DEFAULT_AUDIENCE])
        assert claims["sub"] == "42"

    @pytest.mark.parametrize(
        ("token_claims", "own_key", "ttl"),
        [
            ({"sub": "1"}, True, 60),
            ({"sub": "1"}, False, -1),
            ({"sub": "1", "aud": "someone-else"}, False, 60),
            ({"sub": "1", "iss": "https://evil.example/"}, False, 60),
        ],
        ids=["another-key", "expired", "wrong-audience", "wrong-issuer"],
    )
    def test_refused(self, token_claims: dict[str, Any], own_key: bool, ttl: int) -> None:
        token = mint(token_claims, ttl_s=ttl, key=new_key() if own_key else None)
        with pytest.raises(InvalidTokenError):
            verify(token, DEFAULT_ISSUER, [DEFAULT_AUDIENCE])

    def test_garbage(self) -> None:
        with pytest.raises(InvalidTokenError):
            verify("not.a.token", DEFAULT_ISSUER, [DEFAULT_AUDIENCE])
