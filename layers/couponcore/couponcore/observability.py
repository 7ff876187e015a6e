"""Logger and tracer, created once and shared by every function (metrics live in couponcore.metrics)."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Tracer

logger = Logger()
tracer = Tracer()
