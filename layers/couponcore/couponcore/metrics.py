"""Every metric of the service, named once, with two outputs.

- Prometheus: a prometheus-client registry (with process and GC collectors) that the local server
  exposes at GET /metrics.
- CloudWatch: in Lambda, each observation is also written as an EMF record through Powertools, under the
  same name, with the same labels as dimensions.

Labels are low-cardinality (route, outcome, level...). Coupon and user ids go to logs, never to labels,
with one deliberate exception: remaining stock is per coupon, reported for the few active coupons only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum

from aws_lambda_powertools.metrics import MetricUnit, single_metric
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    platform_collector,
    process_collector,
)

NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "CouponService")
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
SIZE_BUCKETS = (1, 5, 10, 25, 50, 100, 250, 500, 1000)


class Kind(Enum):
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"


@dataclass(frozen=True)
class MetricSpec:
    name: str  # the Prometheus name (counters gain "_total" when exposed) and the EMF metric name
    kind: Kind
    description: str
    labels: tuple[str, ...] = ()
    unit: MetricUnit = MetricUnit.Count
    buckets: tuple[float, ...] = LATENCY_BUCKETS


ISSUE_REQUESTS = MetricSpec(
    "coupon_issue_requests", Kind.COUNTER, "Issue requests by route and outcome code", ("route", "outcome")
)
ISSUE_LATENCY = MetricSpec(
    "coupon_issue_latency_seconds",
    Kind.HISTOGRAM,
    "Issue request latency in the handler",
    ("route",),
    MetricUnit.Seconds,
)
RESERVATIONS_SENT = MetricSpec("coupon_reservations_sent", Kind.COUNTER, "Reservations handed to SQS", ("route",))
RESERVATIONS_RELEASED = MetricSpec(
    "coupon_reservations_released", Kind.COUNTER, "Seats given back in Redis, by reason", ("reason",)
)
RESERVATIONS_REJECTED = MetricSpec(
    "coupon_reservations_rejected", Kind.COUNTER, "Reservations MySQL refused for good (marked REJECTED)"
)
PERSISTED_ROWS = MetricSpec("coupon_persisted_rows", Kind.COUNTER, "Issue rows batch_persist inserted")
REDELIVERED_RECORDS = MetricSpec(
    "coupon_redelivered_records", Kind.COUNTER, "Records whose issue MySQL already held (SQS redelivery or a resend)"
)
BATCH_SIZE = MetricSpec(
    "coupon_batch_size", Kind.HISTOGRAM, "Records per batch_persist invocation", (), MetricUnit.Count, SIZE_BUCKETS
)
BATCH_FAILED_RECORDS = MetricSpec(
    "coupon_batch_failed_records",
    Kind.COUNTER,
    "Records reported failed to SQS (retried, then dead-lettered)",
    ("reason",),
)
DLQ_MESSAGES = MetricSpec("coupon_dlq_messages", Kind.GAUGE, "Messages waiting in the dead-letter queue")
QUEUE_MESSAGES = MetricSpec("coupon_queue_messages", Kind.GAUGE, "Reservations waiting in the issue queue")
PERSIST_LAG = MetricSpec(
    "coupon_persist_lag_seconds",
    Kind.HISTOGRAM,
    "From reservation to its row in MySQL",
    (),
    MetricUnit.Seconds,
    (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RECONCILE_FINDINGS = MetricSpec(
    "coupon_reconcile_findings", Kind.COUNTER, "Drift repaired by reconciliation, by kind", ("kind",)
)
LOCK_WAIT = MetricSpec(
    "coupon_lock_wait_seconds", Kind.HISTOGRAM, "Time to get the V1-async coupon lock", (), MetricUnit.Seconds
)
LOCK_FAILURES = MetricSpec("coupon_lock_failures", Kind.COUNTER, "V1-async lock not had within the wait time")
CACHE_REQUESTS = MetricSpec(
    "coupon_cache_requests", Kind.COUNTER, "Coupon cache lookups by level and result", ("level", "result")
)
CACHE_REFRESH_FAILURES = MetricSpec(
    "coupon_cache_refresh_failures", Kind.COUNTER, "After-commit cache refreshes that failed (logged, never surfaced)"
)
DEPENDENCY_ERRORS = MetricSpec(
    "coupon_dependency_errors", Kind.COUNTER, "Calls that found a dependency down", ("dependency",)
)
REMAINING_STOCK = MetricSpec("coupon_remaining_stock", Kind.GAUGE, "Seats left per active coupon", ("coupon_id",))

ALL_METRICS = (
    ISSUE_REQUESTS,
    ISSUE_LATENCY,
    RESERVATIONS_SENT,
    RESERVATIONS_RELEASED,
    RESERVATIONS_REJECTED,
    PERSISTED_ROWS,
    REDELIVERED_RECORDS,
    BATCH_SIZE,
    BATCH_FAILED_RECORDS,
    DLQ_MESSAGES,
    QUEUE_MESSAGES,
    PERSIST_LAG,
    RECONCILE_FINDINGS,
    LOCK_WAIT,
    LOCK_FAILURES,
    CACHE_REQUESTS,
    CACHE_REFRESH_FAILURES,
    DEPENDENCY_ERRORS,
    REMAINING_STOCK,
)

registry = CollectorRegistry()
process_collector.ProcessCollector(registry=registry)
platform_collector.PlatformCollector(registry=registry)
gc_collector.GCCollector(registry=registry)

_prometheus: dict[str, Counter | Histogram | Gauge] = {}
for _spec in ALL_METRICS:
    if _spec.kind is Kind.COUNTER:
        _prometheus[_spec.name] = Counter(_spec.name, _spec.description, _spec.labels, registry=registry)
    elif _spec.kind is Kind.HISTOGRAM:
        _prometheus[_spec.name] = Histogram(
            _spec.name, _spec.description, _spec.labels, registry=registry, buckets=_spec.buckets
        )
    else:
        _prometheus[_spec.name] = Gauge(_spec.name, _spec.description, _spec.labels, registry=registry)


def _emf_enabled() -> bool:
    # In Lambda only: locally the registry is the output, and EMF lines would only clutter the logs.
    disabled = os.environ.get("POWERTOOLS_METRICS_DISABLED", "").lower() in {"1", "true"}
    return bool(os.environ.get("AWS_LAMBDA_FUNCTION_NAME")) and not disabled


def _record(spec: MetricSpec, value: float, labels: dict[str, str]) -> None:
    metric = _prometheus[spec.name]
    child = metric.labels(**labels) if spec.labels else metric
    if spec.kind is Kind.COUNTER:
        child.inc(value)  # type: ignore[union-attr]
    elif spec.kind is Kind.HISTOGRAM:
        child.observe(value)  # type: ignore[union-attr]
    else:
        child.set(value)  # type: ignore[union-attr]
    if _emf_enabled():
        with single_metric(name=spec.name, unit=spec.unit, value=value, namespace=NAMESPACE) as emf:
            for key, label in labels.items():
                emf.add_dimension(name=key, value=label)


def count(spec: MetricSpec, value: float = 1, **labels: str) -> None:
    _record(spec, value, labels)


def observe(spec: MetricSpec, value: float, **labels: str) -> None:
    _record(spec, value, labels)


def set_gauge(spec: MetricSpec, value: float, **labels: str) -> None:
    _record(spec, value, labels)
