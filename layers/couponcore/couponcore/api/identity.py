"""Who is asking: the identity API Gateway verified, never a user id the body merely claims.

On the issue and status routes the user is the JWT's `sub` (verified by the HttpApi JWT authorizer); a
body or path `userId` that differs is refused with 403. With `REQUIRE_IDENTITY` on (the template sets
it), a request that carries no verified identity is refused too. Admin routes sit behind IAM
authorization in AWS; a request that reaches them with a JWT must carry the admin scope.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEventV2

from couponcore.domain.errors import CouponError, ErrorCode

ADMIN_SCOPE = "coupon/admin"


def _require_identity() -> bool:
    return os.environ.get("REQUIRE_IDENTITY", "false").strip().lower() in {"1", "true", "yes"}


def _claims(event: APIGatewayProxyEventV2) -> dict[str, Any]:
    return event.request_context.authorizer.jwt_claim


def acting_user(event: APIGatewayProxyEventV2, claimed_user_id: int) -> int:
    """The user this request acts for; refuses a claimed id that is not the verified one."""
    subject = _claims(event).get("sub")
    if subject is None:
        if _require_identity():
            raise CouponError(ErrorCode.FORBIDDEN, "This route needs an authenticated user.")
        return claimed_user_id  # local development: the body is trusted (announced by the local server)
    if str(subject) != str(claimed_user_id):
        raise CouponError(ErrorCode.FORBIDDEN, "userId is not the authenticated user.")
    return claimed_user_id


def require_admin(event: APIGatewayProxyEventV2) -> None:
    authorizer = event.request_context.authorizer
    if authorizer.get("iam"):
        return  # API Gateway's IAM authorization already decided
    claims = _claims(event)
    if not claims:
        if _require_identity():
            raise CouponError(ErrorCode.FORBIDDEN, "Admin routes need admin rights.")
        return
    scopes = str(claims.get("scope", "")).split() + list(authorizer.jwt_scopes or [])
    if ADMIN_SCOPE not in scopes:
        raise CouponError(ErrorCode.FORBIDDEN, "Admin routes need admin rights.")
