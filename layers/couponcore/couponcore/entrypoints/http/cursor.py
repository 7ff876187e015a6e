"""The wallet's opaque page cursor: where the next page starts (an issue's date and row id), so a page is a
range read that starts exactly where the previous one stopped, with nothing missed or repeated."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime

from couponcore.domain.clock import from_epoch_us, to_epoch_us
from couponcore.domain.coupon import MAX_ID
from couponcore.domain.errors import CouponError, ErrorCode

_FORM = re.compile(r"(\d{1,17})\.(\d{1,19})")


def encode(position: tuple[datetime, int]) -> str:
    issued, row_id = position
    return base64.urlsafe_b64encode(f"{to_epoch_us(issued)}.{row_id}".encode()).decode().rstrip("=")


def decode(cursor: str) -> tuple[datetime, int]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        text = ""
    form = _FORM.fullmatch(text)
    if form is None or not 0 < int(form[2]) <= MAX_ID:
        raise CouponError(ErrorCode.INVALID_REQUEST, "cursor is not one this API gave.")
    try:
        return from_epoch_us(int(form[1])), int(form[2])
    except OverflowError as error:
        raise CouponError(ErrorCode.INVALID_REQUEST, "cursor is not one this API gave.") from error
