"""Request and response bodies of the contract (camelCase JSON)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

from couponcore.domain.clock import to_iso_z, to_naive_utc
from couponcore.domain.coupon import MAX_ID, CouponType, IssueMode
from couponcore.domain.redemption import MAX_EXPIRES_IN_DAYS, MAX_ORDER_AMOUNT, ORDER_ID, Usage
from couponcore.services.coupons import IssueStatus

# Strict: "1", 1.0 and true are not ids.
EntityId = Annotated[int, Field(strict=True, gt=0, le=MAX_ID)]
# MySQL's DATETIME range: what the database can store is what the API accepts.
EARLIEST = datetime(1000, 1, 1)
LATEST = datetime(9999, 12, 31, 23, 59, 59)


def _stored_as_utc(value: datetime) -> datetime:
    """An instant with any offset, as the naive UTC time the database stores; out of range is invalid."""
    try:
        utc = to_naive_utc(value)
    except OverflowError as error:  # e.g. 9999-12-31T23:59:59-23:59 is in the year 10000 in UTC
        raise ValueError("the instant is outside the years 1000 to 9999 in UTC") from error
    if not EARLIEST <= utc <= LATEST:
        raise ValueError("the instant is outside the years 1000 to 9999 in UTC")
    return utc


# A request's time: any ISO-8601 offset in, naive UTC out.
UtcInstant = Annotated[AwareDatetime, AfterValidator(_stored_as_utc)]
# A response's time: naive UTC in, ISO-8601 with Z out.
UtcDatetime = Annotated[
    datetime,
    PlainSerializer(to_iso_z, return_type=str),
]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class IssueRequest(CamelModel):
    coupon_id: EntityId
    user_id: EntityId


class IssueResult(CamelModel):
    is_success: bool = True
    code: Literal[IssueStatus.ISSUED, IssueStatus.RESERVED]  # the two statuses a success answers


class ErrorBody(CamelModel):
    is_success: bool = False
    code: str
    comment: str


class CouponRequest(CamelModel):
    title: Annotated[str, Field(strict=True, min_length=1, max_length=255)]
    total_quantity: Annotated[int | None, Field(strict=True, gt=0, le=2**31 - 1)]
    discount_amount: Annotated[int, Field(strict=True, ge=0, le=2**31 - 1)]
    min_available_amount: Annotated[int, Field(strict=True, ge=0, le=2**31 - 1)]
    date_issue_start: UtcInstant
    date_issue_end: UtcInstant
    issue_mode: IssueMode = IssueMode.ASYNC
    expires_in_days: Annotated[int | None, Field(strict=True, ge=1, le=MAX_EXPIRES_IN_DAYS)] = None
    date_use_end: UtcInstant | None = None


class CouponResponse(CamelModel):
    id: int
    title: str
    coupon_type: CouponType
    total_quantity: int | None
    issued_quantity: int
    reserved_quantity: int
    discount_amount: int
    min_available_amount: int
    date_issue_start: UtcDatetime
    date_issue_end: UtcDatetime
    issue_mode: IssueMode
    expires_in_days: int | None
    date_use_end: UtcDatetime | None


class IssueStatusResponse(CamelModel):
    coupon_id: int
    user_id: int
    status: IssueStatus
    date_issued: UtcDatetime | None
    usage: Usage | None  # null while RESERVED or REJECTED
    date_expire: UtcDatetime | None
    date_used: UtcDatetime | None
    order_id: str | None


OrderId = Annotated[str, Field(strict=True, pattern=f"^{ORDER_ID.pattern}$")]


class RedemptionRequest(CamelModel):
    order_id: OrderId
    order_amount: Annotated[int, Field(strict=True, ge=0, le=MAX_ORDER_AMOUNT)]


class RedemptionResult(CamelModel):
    is_success: bool = True
    code: Literal["REDEEMED", "RESTORED"]
    coupon_id: int
    user_id: int
    order_id: str
    discount_amount: int
    date_used: UtcDatetime | None  # null once restored


class WalletItem(CamelModel):
    coupon_id: int
    title: str
    discount_amount: int
    min_available_amount: int
    usage: Usage
    date_issued: UtcDatetime
    date_expire: UtcDatetime | None
    date_used: UtcDatetime | None
    order_id: str | None


class WalletPageResponse(CamelModel):
    items: list[WalletItem]
    next_cursor: str | None  # pass as ?cursor= for the next page; null on the last


class HealthResponse(CamelModel):
    status: Literal["UP", "DOWN"]
    checks: dict[str, Literal["UP", "DOWN"]]
