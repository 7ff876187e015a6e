"""Every metric of the service, named once, leaving as CloudWatch embedded metric format (EMF) records
through Powertools `Metrics`.

An invocation's metrics leave as one EMF record when its handler returns (`log_metrics` on every
entry point). Its dimensions are the invocation's own: the route and outcome of an issue request
(`tag_invocation`). A metric with labels of its own (a release reason, a reconcile finding) is rare
and leaves at once as a record of its own, so that no label ever changes another metric's dimensions.

Labels are low-cardinality (route, outcome, reason...). Coupon and user ids go to logs, never to
labels, with one deliberate exception: remaining stock is per coupon, reported for the few active
coupons only. Locally, the runtime reads the same records from each container's log and serves them
as Prometheus metrics (localdev/metrics_sink.py), which is why every spec also says its kind.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from enum import Enum

from aws_lambda_powertools.metrics import Metrics, MetricUnit, single_metric

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
# The coupon cache, one counter per answer (a lookup that neither level answered went to MySQL). Labels
# would split one lookup over two records; plain counters stay in the invocation's one record.
CACHE_LOOKUPS = MetricSpec("coupon_cache_lookups", Kind.COUNTER, "Coupon cache lookups")
CACHE_LOCAL_HITS = MetricSpec("coupon_cache_local_hits", Kind.COUNTER, "Lookups the container's own cache answered")
CACHE_REDIS_HITS = MetricSpec("coupon_cache_redis_hits", Kind.COUNTER, "Lookups Redis answered after a local miss")
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
    CACHE_LOOKUPS,
    CACHE_LOCAL_HITS,
    CACHE_REDIS_HITS,
    CACHE_REFRESH_FAILURES,
    DEPENDENCY_ERRORS,
    REMAINING_STOCK,
)

# The dimensions every metric of an invocation's record carries.
INVOCATION_LABELS = frozenset({"route", "outcome"})
SPECS = {spec.name: spec for spec in ALL_METRICS}
_enabled = os.environ.get("POWERTOOLS_METRICS_DISABLED", "").strip().lower() not in {"1", "true"}
invocation_metrics = Metrics(namespace=NAMESPACE)
# An invocation with nothing to report (a health check) is normal here, not a mistake worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


def tag_invocation(**dimensions: str) -> None:
    """Dimensions of this invocation's record (known only once the request is answered)."""
    if _enabled:
        for name, value in dimensions.items():
            invocation_metrics.add_dimension(name=name, value=value)


def _record(spec: MetricSpec, value: float, labels: dict[str, str]) -> None:
    if not _enabled:
        return
    if INVOCATION_LABELS.issuperset(spec.labels):
        invocation_metrics.add_metric(name=spec.name, unit=spec.unit, value=value)
        return
    with single_metric(name=spec.name, unit=spec.unit, value=value, namespace=NAMESPACE) as own_record:
        for name, label in labels.items():
            own_record.add_dimension(name=name, value=label)


def count(spec: MetricSpec, value: float = 1, **labels: str) -> None:
    _record(spec, value, labels)


def observe(spec: MetricSpec, value: float, **labels: str) -> None:
    _record(spec, value, labels)


def set_gauge(spec: MetricSpec, value: float, **labels: str) -> None:
    _record(spec, value, labels)
