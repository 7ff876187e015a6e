from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """The contract's error codes; the HTTP status of each lives in the API layer."""

    INVALID_REQUEST = "INVALID_REQUEST"
    FORBIDDEN = "FORBIDDEN"
    COUPON_NOT_EXIST = "COUPON_NOT_EXIST"
    ISSUE_NOT_FOUND = "ISSUE_NOT_FOUND"
    DUPLICATED_COUPON_ISSUE = "DUPLICATED_COUPON_ISSUE"
    INVALID_COUPON_ISSUE_QUANTITY = "INVALID_COUPON_ISSUE_QUANTITY"
    INVALID_COUPON_ISSUE_DATE = "INVALID_COUPON_ISSUE_DATE"
    WRONG_ISSUE_MODE = "WRONG_ISSUE_MODE"
    ISSUE_NOT_SETTLED = "ISSUE_NOT_SETTLED"
    COUPON_ALREADY_USED = "COUPON_ALREADY_USED"
    COUPON_EXPIRED = "COUPON_EXPIRED"
    ORDER_AMOUNT_TOO_LOW = "ORDER_AMOUNT_TOO_LOW"
    REDEMPTION_NOT_FOUND = "REDEMPTION_NOT_FOUND"
    TOO_MANY_REQUESTS = "TOO_MANY_REQUESTS"
    FAIL_COUPON_ISSUE_REQUEST = "FAIL_COUPON_ISSUE_REQUEST"


_COMMENTS: dict[ErrorCode, str] = {
    ErrorCode.INVALID_REQUEST: "The request is malformed.",
    ErrorCode.FORBIDDEN: "You are not allowed to do this.",
    ErrorCode.COUPON_NOT_EXIST: "The coupon does not exist.",
    ErrorCode.ISSUE_NOT_FOUND: "This user holds no issue of this coupon.",
    ErrorCode.DUPLICATED_COUPON_ISSUE: "This user already holds this coupon.",
    ErrorCode.INVALID_COUPON_ISSUE_QUANTITY: "The coupon is sold out.",
    ErrorCode.INVALID_COUPON_ISSUE_DATE: "The coupon is outside its issue window.",
    ErrorCode.WRONG_ISSUE_MODE: "The coupon is issued through the other issue path.",
    ErrorCode.ISSUE_NOT_SETTLED: "The coupon is reserved and not yet issued; retry shortly.",
    ErrorCode.COUPON_ALREADY_USED: "The coupon is used by another order.",
    ErrorCode.COUPON_EXPIRED: "The coupon has expired.",
    ErrorCode.ORDER_AMOUNT_TOO_LOW: "The order amount is below the coupon's minimum.",
    ErrorCode.REDEMPTION_NOT_FOUND: "That order does not hold this coupon.",
    ErrorCode.TOO_MANY_REQUESTS: "Too many requests; slow down.",
    ErrorCode.FAIL_COUPON_ISSUE_REQUEST: "The coupon could not be issued right now; nothing was issued. Retry later.",
}


class CouponError(Exception):
    """A refusal the client caused or can act on; never a bug."""

    def __init__(self, code: ErrorCode, comment: str | None = None) -> None:
        self.code = code
        self.comment = comment or _COMMENTS[code]
        super().__init__(f"{code.value}: {self.comment}")


class DependencyUnavailableError(Exception):
    """MySQL, Redis or SQS is down, too slow or refusing writes. Raised by the adapters in place of their
    library's errors; the client hears 503 with Retry-After."""

    def __init__(self, dependency: str, cause: BaseException | None = None) -> None:
        self.dependency = dependency
        super().__init__(f"{dependency} unavailable: {cause!r}" if cause else f"{dependency} unavailable")


class OutcomeUnknownError(DependencyUnavailableError):
    """The call may have done its work although it failed (a timeout after the request left, a server error):
    a message may be on the queue. Whatever it reserved must stay reserved until reconciliation knows."""
