"""Logger and tracing, shared by every function (metrics: couponcore.metrics and adapters/emf_metrics.py)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Tracer

from couponcore.config import get_settings

logger = Logger()
Handler = TypeVar("Handler", bound=Callable[..., Any])


@cache
def tracer() -> Tracer:
    return Tracer()


def traced(handler: Handler) -> Handler:
    """The handler inside an X-Ray segment when tracing is on. With it off (locally, in tests), the X-Ray
    SDK is never imported: that import alone is about 140 ms of a cold start."""
    if not get_settings().tracing_enabled:
        return handler
    return cast(Handler, tracer().capture_lambda_handler(handler, capture_response=False))
