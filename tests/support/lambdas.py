"""Invoking the real function handlers in this process, one invocation at a time as a container does,
with API Gateway payload-2.0 events. (Concurrency is tested on the services, and end to end on the
local Lambda runtime.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from couponcore.domain.issue_route import IssueRoute
from localdev import inprocess
from localdev.events import http_api_event


def one_at_a_time(function_dir: str) -> Callable[[dict[str, Any]], Any]:
    """An invoker for callers on many threads (a poller) that runs one invocation at a time, as a container."""
    lock = threading.Lock()

    def invoke_serially(event: dict[str, Any]) -> Any:
        with lock:
            return invoke(function_dir, event)

    return invoke_serially


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


# The tests' own waits are longer than the template's (DB_LOCK_WAIT_TIMEOUT_S=10 for 200 threads on one row):
# an invocation gets as long as they need, unless a test gives it less.
TEST_TIMEOUT_MS = 30_000


def invoke(function_dir: str, event: dict[str, Any], timeout_ms: int = TEST_TIMEOUT_MS) -> Any:
    return inprocess.invoke(function_dir, event, timeout_ms)


def call(function_dir: str, event: dict[str, Any], timeout_ms: int = TEST_TIMEOUT_MS) -> ApiResponse:
    result = invoke(function_dir, event, timeout_ms)
    raw = result.get("body") or ""
    try:
        body = json.loads(raw)
    except ValueError:
        body = raw
    return ApiResponse(status=int(result["statusCode"]), headers=result.get("headers") or {}, body=body)


def issue_v1(coupon_id: Any, user_id: Any, timeout_ms: int = TEST_TIMEOUT_MS) -> ApiResponse:
    event = http_api_event("POST", "/v1/issue", body={"couponId": coupon_id, "userId": user_id})
    return call("issue_sync", event, timeout_ms)


def issue_async(
    route: IssueRoute,
    coupon_id: Any,
    user_id: Any,
    idempotency_key: str | None = None,
    timeout_ms: int = TEST_TIMEOUT_MS,
) -> ApiResponse:
    """One of the two async routes; timeout_ms: the time the invocation has left when it starts."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    body = {"couponId": coupon_id, "userId": user_id}
    event = http_api_event("POST", route.path, body=body, headers=headers)
    return call("issue_async", event, timeout_ms)


def create_coupon(**fields: Any) -> ApiResponse:
    body = {
        "title": "Flash sale",
        "totalQuantity": 100,
        "discountAmount": 1000,
        "minAvailableAmount": 10000,
        "dateIssueStart": "2020-01-01T00:00:00Z",
        "dateIssueEnd": "2099-01-01T00:00:00Z",
        "issueMode": "SYNC",
    }
    body.update(fields)
    return call("coupons", http_api_event("POST", "/coupons", body=body))


def get_coupon(coupon_id: Any) -> ApiResponse:
    return call(
        "coupons",
        http_api_event(
            "GET",
            f"/coupons/{coupon_id}",
            route_key="GET /coupons/{couponId}",
            path_parameters={"couponId": str(coupon_id)},
        ),
    )


def issue_status(coupon_id: Any, user_id: Any) -> ApiResponse:
    return call(
        "coupons",
        http_api_event(
            "GET",
            f"/coupons/{coupon_id}/issues/{user_id}",
            route_key="GET /coupons/{couponId}/issues/{userId}",
            path_parameters={"couponId": str(coupon_id), "userId": str(user_id)},
        ),
    )


def new_coupon_id(**fields: Any) -> int:
    response = create_coupon(**fields)
    assert response.status == 201, response
    return int(response.body["id"])


def redeem(coupon_id: Any, user_id: Any, order_id: Any, order_amount: Any = 50_000) -> ApiResponse:
    return call(
        "wallet", redemption_event("PUT", coupon_id, user_id, body={"orderId": order_id, "orderAmount": order_amount})
    )


def restore(coupon_id: Any, user_id: Any, order_id: str) -> ApiResponse:
    return call("wallet", redemption_event("DELETE", coupon_id, user_id, query=f"orderId={order_id}"))


def redemption_event(method: str, coupon_id: Any, user_id: Any, **fields: Any) -> dict[str, Any]:
    return http_api_event(
        method,
        f"/coupons/{coupon_id}/issues/{user_id}/redemption",
        route_key=f"{method} /coupons/{{couponId}}/issues/{{userId}}/redemption",
        path_parameters={"couponId": str(coupon_id), "userId": str(user_id)},
        **fields,
    )


def wallet(user_id: Any, query: str = "") -> ApiResponse:
    event = http_api_event(
        "GET",
        f"/users/{user_id}/coupons",
        route_key="GET /users/{userId}/coupons",
        path_parameters={"userId": str(user_id)},
        query=query,
    )
    return call("wallet", event)
