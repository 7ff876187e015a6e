"""Route definitions: one Powertools `Router` per function that serves them (see template.yaml)."""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated, Any, Literal, cast

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.data_classes.api_gateway_proxy_event import APIGatewayProxyEventV2

from couponcore.bootstrap import services
from couponcore.domain.coupon import MAX_ID, NewCoupon
from couponcore.domain.errors import CouponError, ErrorCode
from couponcore.domain.issue_route import IssueRoute
from couponcore.domain.redemption import ORDER_ID, Usage
from couponcore.entrypoints.http import cursor, outcome
from couponcore.entrypoints.http.errors import RETRY_AFTER_SECONDS
from couponcore.entrypoints.http.identity import acting_user, require_admin
from couponcore.entrypoints.http.models import (
    CouponRequest,
    CouponResponse,
    ErrorBody,
    HealthResponse,
    IssueRequest,
    IssueResult,
    IssueStatusResponse,
    RedemptionRequest,
    RedemptionResult,
    WalletItem,
    WalletPageResponse,
)
from couponcore.services.coupon_use import UseAnswer
from couponcore.services.coupons import CouponView, IssueStatus

MAX_IDEMPOTENCY_KEY = 128

PathId = Annotated[int, Path(gt=0, le=MAX_ID)]

_ERRORS: dict[int, OpenAPIResponse] = {
    status: {"description": description, "content": {"application/json": {"model": ErrorBody}}}
    for status, description in (
        (400, "Malformed request"),
        (403, "Not the authenticated user, or not an admin"),
        (404, "No such coupon or issue"),
        (409, "Refused by a coupon rule, or a redemption rule"),
        (422, "Invalid request"),
        (503, "A dependency is unavailable; nothing was changed"),
    )
}


def _json(status: HTTPStatus, body: object) -> Response[Any]:
    # Every 503 says when to come back, as the error answers do.
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if status == HTTPStatus.SERVICE_UNAVAILABLE else None
    return Response(status_code=int(status), content_type=content_types.APPLICATION_JSON, body=body, headers=headers)


def _dump(
    model: CouponResponse | IssueResult | IssueStatusResponse | HealthResponse | RedemptionResult | WalletPageResponse,
) -> dict[str, object]:
    return model.model_dump(mode="json", by_alias=True)


def _coupon_body(view: CouponView) -> dict[str, object]:
    coupon = view.coupon
    return _dump(
        CouponResponse(
            id=coupon.id,
            title=coupon.title,
            coupon_type=coupon.coupon_type,
            total_quantity=coupon.total_quantity,
            issued_quantity=coupon.issued_quantity,
            reserved_quantity=view.reserved_quantity,
            discount_amount=coupon.discount_amount,
            min_available_amount=coupon.min_available_amount,
            date_issue_start=coupon.date_issue_start,
            date_issue_end=coupon.date_issue_end,
            issue_mode=coupon.issue_mode,
            expires_in_days=coupon.expires_in_days,
            date_use_end=coupon.date_use_end,
        )
    )


issue_sync: Router = Router()  # type: ignore[no-untyped-call]
issue_async: Router = Router()  # type: ignore[no-untyped-call]
coupons: Router = Router()  # type: ignore[no-untyped-call]
wallet: Router = Router()  # type: ignore[no-untyped-call]
ops: Router = Router()  # type: ignore[no-untyped-call]


def _request(router: Router) -> APIGatewayProxyEventV2:
    """The request being resolved (every route here is an HTTP API payload-2.0 route)."""
    return cast(APIGatewayProxyEventV2, router.current_event)


@issue_sync.post(
    "/v1/issue",
    summary="V1: issue synchronously under the coupon row lock",
    responses={200: {"description": "Issued", "content": {"application/json": {"model": IssueResult}}}, **_ERRORS},
)
def issue_v1(request: IssueRequest) -> Response[IssueResult]:
    user_id = acting_user(_request(issue_sync), request.user_id)
    return _issue_answer(HTTPStatus.OK, services().sync_issue.issue(request.coupon_id, user_id))


def _issue_answer(
    status: HTTPStatus, issued: Literal[IssueStatus.ISSUED, IssueStatus.RESERVED]
) -> Response[IssueResult]:
    outcome.record(issued.value)
    return _json(status, _dump(IssueResult(code=issued)))


def _idempotency_key() -> str | None:
    key = _request(issue_async).headers.get("idempotency-key")
    if key is not None and not 0 < len(key) <= MAX_IDEMPOTENCY_KEY:
        raise CouponError(ErrorCode.INVALID_REQUEST, f"Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} characters.")
    return key


def _reserve(route: IssueRoute, request: IssueRequest) -> Response[IssueResult]:
    key = _idempotency_key()
    user_id = acting_user(_request(issue_async), request.user_id)
    reserved = services().idempotent_issue.reserve(route, request.coupon_id, user_id, key, issue_async.lambda_context)
    return _issue_answer(HTTPStatus.ACCEPTED, reserved)


_RESERVED: dict[int, OpenAPIResponse] = {
    202: {"description": "Reserved; poll the status route", "content": {"application/json": {"model": IssueResult}}}
}


@issue_async.post(
    "/v1/issue-async", summary="V1-async: reserve under a per-coupon Redis lock", responses={**_RESERVED, **_ERRORS}
)
def issue_v1_async(request: IssueRequest) -> Response[IssueResult]:
    return _reserve(IssueRoute.V1_ASYNC, request)


@issue_async.post(
    "/v2/issue-async", summary="V2: reserve with one atomic Redis Lua script", responses={**_RESERVED, **_ERRORS}
)
def issue_v2_async(request: IssueRequest) -> Response[IssueResult]:
    return _reserve(IssueRoute.V2, request)


@coupons.post(
    "/coupons",
    summary="Create a coupon event",
    responses={201: {"description": "Created", "content": {"application/json": {"model": CouponResponse}}}, **_ERRORS},
)
def create_coupon(request: CouponRequest) -> Response[CouponResponse]:
    require_admin(_request(coupons))
    view = services().coupons.create(
        NewCoupon(
            title=request.title,
            total_quantity=request.total_quantity,
            discount_amount=request.discount_amount,
            min_available_amount=request.min_available_amount,
            date_issue_start=request.date_issue_start,
            date_issue_end=request.date_issue_end,
            issue_mode=request.issue_mode,
            expires_in_days=request.expires_in_days,
            date_use_end=request.date_use_end,
        )
    )
    return _json(HTTPStatus.CREATED, _coupon_body(view))


@coupons.get(
    "/coupons/<couponId>",
    summary="Read a coupon with live counts",
    responses={
        200: {"description": "The coupon", "content": {"application/json": {"model": CouponResponse}}},
        **_ERRORS,
    },
)
def get_coupon(couponId: PathId) -> Response[CouponResponse]:  # noqa: N803 - the contract's path name
    require_admin(_request(coupons))
    return _json(HTTPStatus.OK, _coupon_body(services().coupons.get(couponId)))


@coupons.get(
    "/coupons/<couponId>/issues/<userId>",
    summary="What a user holds of a coupon",
    responses={
        200: {"description": "The status", "content": {"application/json": {"model": IssueStatusResponse}}},
        **_ERRORS,
    },
)
def get_issue_status(couponId: PathId, userId: PathId) -> Response[IssueStatusResponse]:  # noqa: N803
    view = services().coupons.issue_status(couponId, acting_user(_request(coupons), userId))
    body = IssueStatusResponse(
        coupon_id=view.coupon_id,
        user_id=view.user_id,
        status=view.status,
        date_issued=view.date_issued,
        usage=view.usage,
        date_expire=view.date_expire,
        date_used=view.date_used,
        order_id=view.order_id,
    )
    return _json(HTTPStatus.OK, _dump(body))


@wallet.get(
    "/users/<userId>/coupons",
    summary="The user's wallet, newest first",
    responses={
        200: {"description": "A page", "content": {"application/json": {"model": WalletPageResponse}}},
        **_ERRORS,
    },
)
def get_wallet(
    userId: PathId,  # noqa: N803 - the contract's names
    usage: Annotated[Usage | None, Query(description="Only the coupons in this use now")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor_: Annotated[
        str | None, Query(alias="cursor", max_length=64, description="The last page's nextCursor")
    ] = None,
) -> Response[WalletPageResponse]:
    user_id = acting_user(_request(wallet), userId)
    after = None if cursor_ is None else cursor.decode(cursor_)
    page = services().coupon_use.wallet(user_id, usage, after, limit)
    items = [
        WalletItem(
            coupon_id=entry.held.coupon_id,
            title=entry.title,
            discount_amount=entry.discount_amount,
            min_available_amount=entry.min_available_amount,
            usage=entry.held.usage(page.judged_at),
            date_issued=entry.held.date_issued,
            date_expire=entry.held.date_expire,
            date_used=entry.held.date_used,
            order_id=entry.held.order_id,
        )
        for entry in page.entries
    ]
    next_cursor = None if page.next_position is None else cursor.encode(page.next_position)
    return _json(HTTPStatus.OK, _dump(WalletPageResponse(items=items, next_cursor=next_cursor)))


_REDEMPTION = "/coupons/<couponId>/issues/<userId>/redemption"


def _redemption_answer(code: Literal["REDEEMED", "RESTORED"], order_id: str, answer: UseAnswer) -> Response[Any]:
    held = answer.held
    body = RedemptionResult(
        code=code,
        coupon_id=held.coupon_id,
        user_id=held.user_id,
        order_id=order_id,
        discount_amount=answer.discount_amount,
        date_used=held.date_used,
    )
    return _json(HTTPStatus.OK, _dump(body))


@wallet.put(
    _REDEMPTION,
    summary="Use the coupon on an order (the order service; idempotent per orderId)",
    responses={
        200: {"description": "Redeemed", "content": {"application/json": {"model": RedemptionResult}}},
        **_ERRORS,
    },
)
def redeem(couponId: PathId, userId: PathId, request: RedemptionRequest) -> Response[RedemptionResult]:  # noqa: N803
    require_admin(_request(wallet))
    answer = services().coupon_use.redeem(couponId, userId, request.order_id, request.order_amount)
    return _redemption_answer("REDEEMED", request.order_id, answer)


@wallet.delete(
    _REDEMPTION,
    summary="Give the coupon back after its order was cancelled (the order service; idempotent)",
    responses={
        200: {"description": "Restored", "content": {"application/json": {"model": RedemptionResult}}},
        **_ERRORS,
    },
)
def restore(
    couponId: PathId,  # noqa: N803
    userId: PathId,  # noqa: N803
    orderId: Annotated[str, Query(pattern=f"^{ORDER_ID.pattern}$")],  # noqa: N803
) -> Response[RedemptionResult]:
    require_admin(_request(wallet))
    return _redemption_answer("RESTORED", orderId, services().coupon_use.restore(couponId, userId, orderId))


# Served by the async issue function: the liveness of what serves a sale, and the load test's baseline (the
# gateway and the runtime, no dependency).
@issue_async.get("/health/live", summary="The issue function runs (calls no dependency)")
def health_live() -> Response[HealthResponse]:
    return _json(HTTPStatus.OK, _dump(HealthResponse(status="UP", checks={})))


_HEALTH_RESPONSES: dict[int, Any] = {
    200: {"description": "All up", "content": {"application/json": {"model": HealthResponse}}},
    503: {"description": "One is down", "content": {"application/json": {"model": HealthResponse}}},
}


@ops.get("/health", summary="Whether MySQL, Redis and SQS answer", responses=_HEALTH_RESPONSES)
@ops.get("/health/ready", summary="As /health: each dependency within a short timeout", responses=_HEALTH_RESPONSES)
def health() -> Response[HealthResponse]:
    report = services().health.check()
    body = HealthResponse(
        status="UP" if report.healthy else "DOWN",
        checks={name: "UP" if up else "DOWN" for name, up in report.checks.items()},
    )
    status = HTTPStatus.OK if report.healthy else HTTPStatus.SERVICE_UNAVAILABLE
    return _json(status, _dump(body))


ALL_ROUTERS = (issue_sync, issue_async, coupons, wallet, ops)
