"""The one place where errors become HTTP answers."""

from __future__ import annotations

import binascii
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError

from couponcore import metrics
from couponcore.bootstrap import services
from couponcore.domain.errors import CouponError, DependencyUnavailableError, ErrorCode
from couponcore.entrypoints.http import outcome
from couponcore.observability import logger

ErrorPayload = dict[str, Any]

STATUS_OF: dict[ErrorCode, HTTPStatus] = {
    ErrorCode.INVALID_REQUEST: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.FORBIDDEN: HTTPStatus.FORBIDDEN,
    ErrorCode.COUPON_NOT_EXIST: HTTPStatus.NOT_FOUND,
    ErrorCode.ISSUE_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorCode.DUPLICATED_COUPON_ISSUE: HTTPStatus.CONFLICT,
    ErrorCode.INVALID_COUPON_ISSUE_QUANTITY: HTTPStatus.CONFLICT,
    ErrorCode.INVALID_COUPON_ISSUE_DATE: HTTPStatus.CONFLICT,
    ErrorCode.WRONG_ISSUE_MODE: HTTPStatus.CONFLICT,
    ErrorCode.ISSUE_NOT_SETTLED: HTTPStatus.CONFLICT,
    ErrorCode.COUPON_ALREADY_USED: HTTPStatus.CONFLICT,
    ErrorCode.COUPON_EXPIRED: HTTPStatus.CONFLICT,
    ErrorCode.ORDER_AMOUNT_TOO_LOW: HTTPStatus.CONFLICT,
    ErrorCode.REDEMPTION_NOT_FOUND: HTTPStatus.CONFLICT,
    ErrorCode.TOO_MANY_REQUESTS: HTTPStatus.TOO_MANY_REQUESTS,
    ErrorCode.FAIL_COUPON_ISSUE_REQUEST: HTTPStatus.SERVICE_UNAVAILABLE,
}

RETRY_AFTER_SECONDS = "1"
_COME_BACK_LATER = (HTTPStatus.SERVICE_UNAVAILABLE, HTTPStatus.TOO_MANY_REQUESTS)


def error_response(error: CouponError, status: HTTPStatus | None = None) -> Response[ErrorPayload]:
    status = status or STATUS_OF[error.code]
    outcome.record(error.code.value)
    # A 503 and a 429 say when to come back (the fair share's window is one second), and so does a redemption
    # of a coupon still on its way to MySQL (batch_persist writes it within seconds).
    come_back = status in _COME_BACK_LATER or error.code is ErrorCode.ISSUE_NOT_SETTLED
    headers = {"Retry-After": RETRY_AFTER_SECONDS} if come_back else None
    return Response(
        status_code=int(status),
        content_type=content_types.APPLICATION_JSON,
        body={"isSuccess": False, "code": error.code.value, "comment": error.comment},
        headers=headers,
    )


def _describe(validation: RequestValidationError) -> str:
    problems = []
    for item in validation.errors()[:5]:
        location = ".".join(str(part) for part in item.get("loc", ()) if part != "body" and not isinstance(part, int))
        problems.append(f"{location or 'body'}: {item.get('msg', item.get('type', 'invalid'))}")
    return "; ".join(problems) or "The request is malformed."


def register_error_handlers(app: APIGatewayHttpResolver) -> None:
    @app.exception_handler(CouponError)
    def on_coupon_error(error: CouponError) -> Response[ErrorPayload]:
        return error_response(error)

    @app.exception_handler(RequestValidationError)
    def on_invalid_request(error: RequestValidationError) -> Response[ErrorPayload]:
        malformed_json = any(item.get("type") == "json_invalid" for item in error.errors())
        status = HTTPStatus.BAD_REQUEST if malformed_json else HTTPStatus.UNPROCESSABLE_ENTITY
        return error_response(CouponError(ErrorCode.INVALID_REQUEST, _describe(error)), status)

    @app.exception_handler(NotFoundError)
    def on_unmatched_path(error: NotFoundError) -> Response[ErrorPayload]:
        # API Gateway already matched the route, so the only way here is a path parameter the resolver's
        # patterns refuse (control characters and the like): a malformed request.
        return error_response(CouponError(ErrorCode.INVALID_REQUEST, "The path is malformed."), HTTPStatus.BAD_REQUEST)

    @app.exception_handler([binascii.Error, UnicodeDecodeError])
    def on_undecodable_body(error: Exception) -> Response[ErrorPayload]:
        return error_response(
            CouponError(ErrorCode.INVALID_REQUEST, "The body is not valid UTF-8 JSON."), HTTPStatus.BAD_REQUEST
        )

    @app.exception_handler(DependencyUnavailableError)
    def on_dependency_down(error: DependencyUnavailableError) -> Response[ErrorPayload]:
        services().metrics.count(metrics.DEPENDENCY_ERRORS, dependency=error.dependency)
        logger.warning("dependency unavailable", extra={"dependency": error.dependency, "error": str(error)})
        return error_response(CouponError(ErrorCode.FAIL_COUPON_ISSUE_REQUEST))

    @app.exception_handler(Exception)
    def on_unexpected(error: Exception) -> Response[ErrorPayload]:
        # A bug: log it with its stack, answer without one. Nothing half-done: every write is one transaction.
        logger.error("unhandled error", exc_info=error)
        outcome.record("INTERNAL_ERROR")
        return Response(
            status_code=HTTPStatus.INTERNAL_SERVER_ERROR,
            content_type=content_types.APPLICATION_JSON,
            body={"isSuccess": False, "code": "INTERNAL_ERROR", "comment": "Unexpected error."},
        )
