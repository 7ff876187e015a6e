"""The HTTP floor of the benchmark: bare uvicorn doing the least an issue route could do, one Redis call
per request and no framework. POST: one EVALSHA of the reservation script (on a sold-out coupon's keys,
so nothing changes); GET: one GET of the coupon's cached entry.

    uvicorn bench.floor_app:app --workers 2 --port PORT
"""

from __future__ import annotations

import json
import os
from collections.abc import Awaitable, Callable
from typing import Any

import redis

from couponcore.adapters import redis_keys
from couponcore.adapters.reservations import RESERVE_SCRIPT, reserve_keys

COUPON_ID = int(os.environ.get("FLOOR_COUPON_ID", "1"))
# The same server over the same verified TLS as the functions' (the developer's account: no secret to read).
_redis = redis.Redis(
    host=os.environ["REDIS_HOST"],
    port=int(os.environ["REDIS_PORT"]),
    db=int(os.environ.get("REDIS_DB", "0")),
    ssl=True,
    ssl_ca_certs=os.environ["REDIS_SSL_CA"],
)
_reserve = _redis.register_script(RESERVE_SCRIPT)
_KEYS = reserve_keys(COUPON_ID)
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["method"] == "POST":
        user = json.loads(body)["userId"]
        answer = _reserve(keys=_KEYS, args=[user, 0, "floor", 0])  # total 0: always sold out
        status, payload = 409, {"isSuccess": False, "code": "INVALID_COUPON_ISSUE_QUANTITY", "script": answer}
    else:
        entry = _redis.get(redis_keys.coupon_view(COUPON_ID))
        status, payload = 200, {"coupon": entry.decode() if isinstance(entry, bytes) else entry}
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})
