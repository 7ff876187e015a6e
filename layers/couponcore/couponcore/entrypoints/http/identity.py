"""Who is asking: the identity API Gateway verified, never a user id the body merely claims.

On the issue and status routes the user is the JWT claim named by `USER_ID_CLAIM` (default `sub`;
Cognito users point it at a custom attribute, since Cognito's `sub` is a UUID), verified by the HttpApi
JWT authorizer; a body or path `userId` that differs is refused with 403, and so is a claim that is not
a user id. With `REQUIRE_IDENTITY` on (the template sets it), a request that carries no verified
identity is refused too. Admin routes sit behind IAM authorization in AWS; a request that reaches them
with a JWT must carry the admin scope.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEventV2

from couponcore.config import get_settings
from couponcore.domain.coupon import MAX_ID
from couponcore.domain.errors import CouponError, ErrorCode

ADMIN_SCOPE = "coupon/admin"


def _claims(event: APIGatewayProxyEventV2) -> dict[str, Any]:
    claims: dict[str, Any] = event.request_context.authorizer.jwt_claim or {}
    token_use = claims.get("token_use")
    if token_use is not None and token_use != get_settings().token_use:
        # Cognito signs id and access tokens with the same keys for the same issuer: only one kind may pass.
        raise CouponError(
            ErrorCode.FORBIDDEN, f"This is an {token_use} token; the API takes {get_settings().token_use} tokens."
        )
    return claims


def _user_id(claim: str, value: object) -> int:
    text = str(value)
    if not text.isdigit() or not 0 < int(text) <= MAX_ID:
        raise CouponError(ErrorCode.FORBIDDEN, f"The token's {claim} claim is not a user id.")
    return int(text)


def acting_user(event: APIGatewayProxyEventV2, claimed_user_id: int) -> int:
    """The user this request acts for; refuses a claimed id that is not the verified one."""
    settings = get_settings()
    claims = _claims(event)
    if not claims:
        if settings.require_identity:
            raise CouponError(ErrorCode.FORBIDDEN, "This route needs an authenticated user.")
        return claimed_user_id  # development mode: the body is trusted (announced by the local gateway)
    claim = settings.user_id_claim
    if claim not in claims:
        raise CouponError(ErrorCode.FORBIDDEN, f"The token has no {claim} claim.")
    if _user_id(claim, claims[claim]) != claimed_user_id:
        raise CouponError(ErrorCode.FORBIDDEN, "userId is not the authenticated user.")
    return claimed_user_id


def require_admin(event: APIGatewayProxyEventV2) -> None:
    authorizer = event.request_context.authorizer
    if authorizer.get("iam"):
        return  # API Gateway's IAM authorization already decided
    claims = _claims(event)
    if not claims:
        if get_settings().require_identity:
            raise CouponError(ErrorCode.FORBIDDEN, "Admin routes need admin rights.")
        return
    scopes = str(claims.get("scope", "")).split() + list(authorizer.jwt_scopes or [])
    if ADMIN_SCOPE not in scopes:
        raise CouponError(ErrorCode.FORBIDDEN, "Admin routes need admin rights.")
