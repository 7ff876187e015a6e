"""API Gateway's request throttling: a token bucket per route and one for the account.

A bucket holds at most ``burst`` tokens and gains ``rate`` tokens a second; a request takes one or, when
none is left, is answered ``429 Too Many Requests`` by the gateway itself (the function never runs). A
bucket starts full, as a route that has seen no traffic lets its whole burst through at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from localdev.template import Throttle


class TokenBucket:
    def __init__(self, throttle: Throttle, clock: Callable[[], float] = time.monotonic) -> None:
        self._rate = throttle.rate
        self._burst = float(throttle.burst)
        self._clock = clock
        self._tokens = self._burst
        self._refilled_at = clock()

    def take(self) -> bool:
        """Take a token if there is one; False means throttled."""
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._refilled_at) * self._rate)
        self._refilled_at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class RouteThrottling:
    """The account's bucket and each route's: a request passes only if both have a token for it."""

    def __init__(
        self, routes: dict[str, Throttle], account: Throttle, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._account = TokenBucket(account, clock)
        self._routes = {route_key: TokenBucket(throttle, clock) for route_key, throttle in routes.items()}

    def admit(self, route_key: str) -> bool:
        route = self._routes.get(route_key)
        # The route's bucket first: a request it refuses does not spend the account's token.
        return (route is None or route.take()) and self._account.take()
