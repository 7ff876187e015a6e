"""Request and response bodies of the contract (camelCase JSON)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer
from pydantic.alias_generators import to_camel

MAX_ID = 2**63 - 1

# Strict: "1", 1.0 and true are not ids.
EntityId = Annotated[int, Field(strict=True, gt=0, le=MAX_ID)]
UtcDatetime = Annotated[
    datetime,
    PlainSerializer(lambda value: value.replace(tzinfo=UTC).isoformat().replace("+00:00", "Z"), return_type=str),
]


class CamelModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class IssueRequest(CamelModel):
    coupon_id: EntityId
    user_id: EntityId


class IssueResult(CamelModel):
    is_success: bool = True
    code: Literal["ISSUED", "RESERVED"]


class ErrorBody(CamelModel):
    is_success: bool = False
    code: str
    comment: str


class CouponRequest(CamelModel):
    title: Annotated[str, Field(strict=True, min_length=1, max_length=255)]
    total_quantity: Annotated[int | None, Field(strict=True, gt=0, le=2**31 - 1)]
    discount_amount: Annotated[int, Field(strict=True, ge=0, le=2**31 - 1)]
    min_available_amount: Annotated[int, Field(strict=True, ge=0, le=2**31 - 1)]
    date_issue_start: AwareDatetime
    date_issue_end: AwareDatetime
    issue_mode: Literal["SYNC", "ASYNC"] = "ASYNC"


class CouponResponse(CamelModel):
    id: int
    title: str
    coupon_type: str
    total_quantity: int | None
    issued_quantity: int
    reserved_quantity: int
    discount_amount: int
    min_available_amount: int
    date_issue_start: UtcDatetime
    date_issue_end: UtcDatetime
    issue_mode: str


class IssueStatusResponse(CamelModel):
    coupon_id: int
    user_id: int
    status: Literal["ISSUED", "RESERVED", "REJECTED"]
    date_issued: UtcDatetime | None


class HealthResponse(CamelModel):
    status: Literal["UP", "DOWN"]
    checks: dict[str, Literal["UP", "DOWN"]]
