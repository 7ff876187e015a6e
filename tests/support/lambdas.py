"""Invoking the real function handlers in-process with API Gateway payload-2.0 events."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from localdev.functions import LocalFunction
from localdev.lambda_runtime import LocalLambdaContext, http_api_event

ROOT = Path(__file__).resolve().parents[2]


@cache
def function(function_dir: str) -> LocalFunction:
    return LocalFunction(function_dir, ROOT / "functions" / function_dir)


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


def call(function_dir: str, event: dict[str, Any]) -> ApiResponse:
    result = function(function_dir).invoke(event, LocalLambdaContext(function_name=function_dir))
    raw = result.get("body") or ""
    try:
        body = json.loads(raw)
    except ValueError:
        body = raw
    return ApiResponse(status=int(result["statusCode"]), headers=result.get("headers") or {}, body=body)


def issue_v1(coupon_id: Any, user_id: Any) -> ApiResponse:
    return call("issue_sync", http_api_event("POST", "/v1/issue", body={"couponId": coupon_id, "userId": user_id}))


def issue_async(route: str, coupon_id: Any, user_id: Any, idempotency_key: str | None = None) -> ApiResponse:
    """route: "v1" or "v2"."""
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
    body = {"couponId": coupon_id, "userId": user_id}
    return call("issue_async", http_api_event("POST", f"/{route}/issue-async", body=body, headers=headers))


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
