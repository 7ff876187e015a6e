"""The local JWT issuer: what Cognito or Auth0 is in AWS. An RS256 key pair made on first use (kept in
.local/jwt/), its JWKS, tokens for `make token`, and the checks the HttpApi JWT authorizer makes
(signature against the JWKS, issuer, audience, expiry), all through PyJWT.

    python -m localdev.jwt_local --user 42            # a user's token
    python -m localdev.jwt_local --user 1 --admin     # with the admin scope
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

ROOT = Path(__file__).resolve().parent.parent
KEY_DIR = Path(os.environ.get("LOCAL_JWT_DIR", ROOT / ".local" / "jwt"))
DEFAULT_ISSUER = "https://local.coupon.test/"
DEFAULT_AUDIENCE = "coupon-local"
ADMIN_SCOPE = "coupon/admin"
KEY_ID = "local-1"

InvalidTokenError = jwt.InvalidTokenError


def new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@cache
def signing_key() -> rsa.RSAPrivateKey:
    """The issuer's private key, generated once per checkout and kept out of git."""
    path = KEY_DIR / "private.pem"
    if not path.exists():
        KEY_DIR.mkdir(parents=True, exist_ok=True)
        pem = new_key().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        temporary = path.with_suffix(f".{os.getpid()}")
        temporary.write_bytes(pem)
        temporary.chmod(0o600)
        try:
            os.link(temporary, path)  # create-if-absent: two first runs at once agree on one key
        except FileExistsError:
            pass
        finally:
            temporary.unlink()
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def jwks() -> dict[str, Any]:
    """The public half, as an issuer publishes it at /.well-known/jwks.json."""
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(signing_key().public_key()))
    return {"keys": [{**public, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]}


def mint(
    claims: dict[str, Any],
    ttl_s: int = 3600,
    issuer: str = DEFAULT_ISSUER,
    audience: str = DEFAULT_AUDIENCE,
    key: rsa.RSAPrivateKey | None = None,
) -> str:
    """A signed access token; iss, aud, iat, exp and token_use are filled in unless given."""
    now = int(time.time())
    body = {"iss": issuer, "aud": audience, "iat": now, "exp": now + ttl_s, "token_use": "access", **claims}
    return jwt.encode(body, key or signing_key(), algorithm="RS256", headers={"kid": KEY_ID})


def verify(token: str, issuer: str, audiences: Sequence[str]) -> dict[str, Any]:
    """The claims of a token the authorizer accepts; raises InvalidTokenError otherwise."""
    claims: dict[str, Any] = jwt.decode(
        token,
        signing_key().public_key(),
        algorithms=["RS256"],
        audience=list(audiences),
        issuer=issuer,
        options={"require": ["exp", "iss"]},
    )
    return claims


def main() -> None:
    parser = argparse.ArgumentParser(description="Print a token the local gateway accepts.")
    parser.add_argument("--user", required=True, help="the user id the token speaks for")
    parser.add_argument("--admin", action="store_true", help=f"add the {ADMIN_SCOPE} scope")
    parser.add_argument("--claim", default=os.environ.get("USER_ID_CLAIM", "sub"), help="claim that names the user")
    parser.add_argument("--ttl", type=int, default=12 * 3600, help="seconds until it expires")
    args = parser.parse_args()
    claims: dict[str, Any] = {"sub": args.user, args.claim: args.user}
    if args.admin:
        claims["scope"] = f"openid {ADMIN_SCOPE}"
    print(mint(claims, ttl_s=args.ttl))


if __name__ == "__main__":
    main()
