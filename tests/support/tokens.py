"""Authorization headers the local gateway accepts, from the local issuer (what `make token` prints)."""

from __future__ import annotations

from localdev.jwt_local import ADMIN_SCOPE, mint

ADMIN = {"Authorization": f"Bearer {mint({'sub': '1', 'scope': f'openid {ADMIN_SCOPE}'})}"}


def as_user(user: int) -> dict[str, str]:
    return {"Authorization": f"Bearer {mint({'sub': str(user)})}"}
