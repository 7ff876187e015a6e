"""Builds the Lambda entry point of an HTTP function: resolver, logging, tracing and metrics."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from couponcore import metrics
from couponcore.adapters.emf_metrics import invocation_metrics
from couponcore.bootstrap import services
from couponcore.entrypoints.http import outcome
from couponcore.entrypoints.http.resolver import (
    ISSUE_ROUTES,
    as_json_request,
    build_resolver,
    refuse_around_the_front_door,
    refuse_oversized,
)
from couponcore.observability import logger, traced
from couponcore.services import time_budget

LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def http_entry_point(*routers: Router) -> LambdaHandler:
    app = build_resolver(*routers)

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
    @invocation_metrics.log_metrics
    @traced
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        started = time.perf_counter()
        with time_budget.invocation(context.get_remaining_time_in_millis()):
            response: dict[str, Any] = (
                refuse_oversized(event)
                or refuse_around_the_front_door(event)
                or app.resolve(as_json_request(event), context)
            )
        answered = outcome.take(default=str(response.get("statusCode")))
        route = ISSUE_ROUTES.get(str(event.get("routeKey")))
        if route is not None:
            sink = services().adapters.metrics
            sink.tag_invocation(route=route, outcome=answered)
            sink.observe(metrics.ISSUE_LATENCY, time.perf_counter() - started, route=route)
            sink.count(metrics.ISSUE_REQUESTS, route=route)
        return response

    return cast(LambdaHandler, lambda_handler)
