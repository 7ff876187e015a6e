"""Builds the Lambda entry point of an HTTP function: resolver, logging, tracing and metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from couponcore.api.resolver import build_resolver
from couponcore.api.routes import RouteGroup
from couponcore.observability import logger, traced

LambdaHandler = Callable[[dict[str, Any], LambdaContext], dict[str, Any]]


def http_entry_point(*route_groups: RouteGroup) -> LambdaHandler:
    app = build_resolver(*route_groups)

    @logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
    @traced
    def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
        response: dict[str, Any] = app.resolve(event, context)
        return response

    return cast(LambdaHandler, lambda_handler)
