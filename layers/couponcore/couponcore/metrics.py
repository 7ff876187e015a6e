"""Every metric of the service, named once. Services report them through the MetricsSink port; in
Lambda they leave as CloudWatch embedded metric format records (adapters/emf_metrics.py).

Labels are low-cardinality (route, outcome, reason...). Coupon and user ids go to logs, never to
labels, with one deliberate exception: remaining stock is per coupon, reported for the few active
coupons only. Locally, the runtime reads the same records from each container's log and serves them
as Prometheus metrics (localdev/metrics_sink.py), which is why every spec also says its kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from aws_lambda_powertools.metrics import MetricUnit

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
REDEMPTIONS = MetricSpec(
    "coupon_redemptions",
    Kind.COUNTER,
    "Redemptions and cancels by action (redeem, restore) and outcome (REDEEMED, RESTORED, REPEATED, or the refusal)",
    ("action", "outcome"),
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
FORGED_RESERVATIONS = MetricSpec(
    "coupon_forged_reservations",
    Kind.COUNTER,
    "Queue messages batch_persist refused because the service did not sign them (moved to the DLQ)",
)
DLQ_MESSAGES = MetricSpec("coupon_dlq_messages", Kind.GAUGE, "Messages waiting in the dead-letter queue")
QUEUE_MESSAGES = MetricSpec("coupon_queue_messages", Kind.GAUGE, "Reservations waiting in the issue queue")
PERSIST_LAG = MetricSpec(
    "coupon_persist_lag_seconds",
    Kind.HISTOGRAM,
    "From a batch's oldest reservation to its row in MySQL",
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
SEATS_LOST = MetricSpec(
    "coupon_seats_lost", Kind.COUNTER, "Times a coupon's seat state was found incomplete (Redis lost it)", ("found_by",)
)
SEATS_PAUSED_REQUESTS = MetricSpec(
    "coupon_seats_paused_requests", Kind.COUNTER, "Reservations refused 503 while a coupon's seats were recounted"
)
SEATS_PAUSE = MetricSpec(
    "coupon_seats_pause_seconds",
    Kind.HISTOGRAM,
    "Seconds a coupon sold nothing after a loss, from the loss seen to the seats rebuilt",
    (),
    MetricUnit.Seconds,
    (1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0),
)
RESERVATIONS_UNCONFIRMED = MetricSpec(
    "coupon_reservations_unconfirmed",
    Kind.COUNTER,
    "Sends whose outcome is unknown (the seat kept; reconciliation resends it)",
)

ALL_METRICS = (
    ISSUE_REQUESTS,
    ISSUE_LATENCY,
    REDEMPTIONS,
    RESERVATIONS_SENT,
    RESERVATIONS_RELEASED,
    RESERVATIONS_REJECTED,
    PERSISTED_ROWS,
    REDELIVERED_RECORDS,
    BATCH_SIZE,
    BATCH_FAILED_RECORDS,
    FORGED_RESERVATIONS,
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
    SEATS_LOST,
    SEATS_PAUSED_REQUESTS,
    SEATS_PAUSE,
    RESERVATIONS_UNCONFIRMED,
)

# The dimensions every metric of an invocation's record carries.
INVOCATION_LABELS = frozenset({"route", "outcome"})
SPECS = {spec.name: spec for spec in ALL_METRICS}
