"""HS256 JWTs for the local server's verifying mode: what API Gateway's JWT authorizer checks in AWS
(signature, issuer, audience, expiry), with a local shared key instead of the issuer's JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

DEFAULT_SECRET = "local-development-only"  # noqa: S105 - the local stand-in key, never used in AWS
DEFAULT_ISSUER = "https://local.coupon.test/"
DEFAULT_AUDIENCE = "coupon-local"


class InvalidTokenError(Exception):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def mint(claims: dict[str, Any], secret: str = DEFAULT_SECRET, ttl_s: int = 3600) -> str:
    """A signed token; iss, aud, iat and exp are filled in when missing."""
    now = int(time.time())
    body = {"iss": DEFAULT_ISSUER, "aud": DEFAULT_AUDIENCE, "iat": now, "exp": now + ttl_s, **claims}
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}.{_b64(json.dumps(body).encode())}"
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def verify(token: str, secret: str, issuer: str, audience: str) -> dict[str, Any]:
    try:
        header_part, body_part, signature_part = token.split(".")
        header = json.loads(_unb64(header_part))
        claims: dict[str, Any] = json.loads(_unb64(body_part))
        signature = _unb64(signature_part)
    except (ValueError, TypeError) as error:
        raise InvalidTokenError("malformed token") from error
    if header.get("alg") != "HS256":
        raise InvalidTokenError("unexpected algorithm")
    expected = hmac.new(secret.encode(), f"{header_part}.{body_part}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        raise InvalidTokenError("bad signature")
    raw_audience = claims.get("aud")
    audiences: list[Any] = raw_audience if isinstance(raw_audience, list) else [raw_audience]
    if claims.get("iss") != issuer or audience not in audiences:
        raise InvalidTokenError("wrong issuer or audience")
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
        raise InvalidTokenError("expired")
    return claims
