"""Logger and tracing, shared by every function (metrics live in couponcore.metrics)."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar, cast

from aws_lambda_powertools import Logger, Tracer

logger = Logger()
Handler = TypeVar("Handler", bound=Callable[..., Any])


def tracing_enabled() -> bool:
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() not in {"1", "true"}


@cache
def tracer() -> Tracer:
    return Tracer()


def traced(handler: Handler) -> Handler:
    """The handler inside an X-Ray segment when tracing is on. With it off (locally, in tests), the X-Ray
    SDK is never imported: that import alone is about 140 ms of a cold start."""
    if not tracing_enabled():
        return handler
    return cast(Handler, tracer().capture_lambda_handler(handler, capture_response=False))
