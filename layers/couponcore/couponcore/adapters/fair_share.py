"""Each user's fair share of a coupon's issue requests, counted in Redis per second.

One counter per user and coupon, in the coupon's hash slot (so the reservation script can count it in the
same call on V2), created with a one-second life: a window that opens with the user's first request, so a user gets at
most ``per_second`` requests through per window and hears 429 for the rest. V1 and V1-async make this one call
before they wait for a lock.
"""

from __future__ import annotations

from typing import Any, cast

from couponcore.adapters import redis_keys
from couponcore.adapters.driver_errors import on_redis
from couponcore.adapters.redis_client import RedisClient

WINDOW_MS = 1000

# Lua: counts the request in KEYS[5]; the count is left in `requests`. Shared by the reservation script.
FAIR_SHARE_STEP = f"""
  local requests = redis.call('INCR', KEYS[5])
  if requests == 1 then
    redis.call('PEXPIRE', KEYS[5], {WINDOW_MS})
  end
"""

# KEYS[5] only: the same step as inside the reservation script, so both count alike. ARGV: the fair share.
ADMIT_SCRIPT = (
    "local fair_share = tonumber(ARGV[1])\n"
    + FAIR_SHARE_STEP.replace("KEYS[5]", "KEYS[1]")
    + "return requests <= fair_share and 1 or 0\n"
)


class RedisFairShare:
    def __init__(self, client: RedisClient, per_second: int) -> None:
        self.per_second = per_second
        self._admit = client.register_script(ADMIT_SCRIPT)

    @on_redis
    def admit(self, coupon_id: int, user_id: int) -> bool:
        if not self.per_second:
            return True
        key = redis_keys.user_requests(coupon_id, user_id)
        return int(cast(Any, self._admit(keys=[key], args=[self.per_second]))) == 1
