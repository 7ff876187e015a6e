"""The front door's origin check: with FrontDoor CloudFront, CloudFront adds a secret header to every request,
and a request without it went around CloudFront's WAF rules (straight to the execute-api endpoint).

IAM-signed requests (the admin routes, signed by the operator's credentials for the API's own host name)
are exempt: IAM has authenticated them, and a signature cannot survive CloudFront's change of host."""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

from couponcore.adapters.aws import forget_secret, read_secret
from couponcore.domain.errors import DependencyUnavailableError

HEADER = "x-origin-verify"
# A wrong header reads the secret again (it may have been rotated) at most this often: requests that go
# around the front door must not turn into Secrets Manager calls.
REREAD_EVERY_S = 60.0


class OriginGuard:
    def __init__(
        self, secret_arn: str | None, read_value: Callable[[], str], monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._secret_arn = secret_arn
        self._read_value = read_value
        self._monotonic = monotonic
        self._reread_at = -REREAD_EVERY_S

    def admits(self, event: Mapping[str, Any]) -> bool:
        if not self._secret_arn:
            return True  # no front door: the API is the front
        if (event.get("requestContext") or {}).get("authorizer", {}).get("iam"):
            return True
        given = str((event.get("headers") or {}).get(HEADER, ""))
        if self._matches(given):
            return True
        now = self._monotonic()
        if not given or now - self._reread_at < REREAD_EVERY_S:
            return False
        # Perhaps rotated since this container read it: read it again before refusing.
        self._reread_at = now
        forget_secret(self._secret_arn)
        return self._matches(given)

    def _matches(self, given: str) -> bool:
        expected = self._read_value()
        return bool(given) and hmac.compare_digest(given.encode(), expected.encode())


def origin_guard(secret_arn: str | None, timeout_s: float) -> OriginGuard:
    def value() -> str:
        assert secret_arn is not None
        found = read_secret(secret_arn, timeout_s).get("value")
        if not isinstance(found, str) or not found:
            raise DependencyUnavailableError("secrets", ValueError(f"{secret_arn} holds no value"))
        return found

    return OriginGuard(secret_arn, value)
