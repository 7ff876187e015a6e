"""What a call answers in the domain's terms: the refusal it raises, or None."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from couponcore.domain.errors import CouponError, ErrorCode


def outcome(action: Callable[[], object]) -> ErrorCode | None:
    """The refusal an action raises, or None when it passes."""
    try:
        action()
    except CouponError as error:
        return error.code
    return None


def refusal(action: Callable[[], object]) -> ErrorCode:
    """The refusal an action must raise."""
    with pytest.raises(CouponError) as raised:
        action()
    return raised.value.code
