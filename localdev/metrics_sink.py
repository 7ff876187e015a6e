"""Prometheus metrics made from the EMF records the functions write to their logs.

In AWS, CloudWatch reads those records from the log groups; locally the runtime hands each one to
`PrometheusSink.record`, which adds it to one registry for all containers, served by the gateway at
GET /metrics. Names, kinds, labels and buckets come from couponcore.metrics, so the two views agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, gc_collector, process_collector
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from couponcore.metrics import ALL_METRICS, SPECS, Kind, MetricSpec

if TYPE_CHECKING:
    from localdev.runtime import LambdaRuntime, Report

# Lambda's Duration and Init Duration, in seconds: from a status poll (about 1 ms) to a slow cold start.
DURATION_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
INIT_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 5.0, 10.0)


class PrometheusSink:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        process_collector.ProcessCollector(registry=self.registry)
        gc_collector.GCCollector(registry=self.registry)
        self._metrics: dict[str, Counter | Histogram | Gauge] = {}
        for spec in ALL_METRICS:
            if spec.kind is Kind.COUNTER:
                self._metrics[spec.name] = Counter(spec.name, spec.description, spec.labels, registry=self.registry)
            elif spec.kind is Kind.HISTOGRAM:
                self._metrics[spec.name] = Histogram(
                    spec.name, spec.description, spec.labels, registry=self.registry, buckets=spec.buckets
                )
            else:
                self._metrics[spec.name] = Gauge(spec.name, spec.description, spec.labels, registry=self.registry)
        self.records = 0
        # What API Gateway's own metrics count (Count, 4xx, 5xx per route), its throttles' 429s included.
        self.gateway_answers = Counter(
            "apigateway_answers",
            "Answers of the HTTP API by route and status, its own (404, 429, 500) and the functions'",
            ["route", "status"],
            registry=self.registry,
        )

        # What CloudWatch shows of each function (AWS/Lambda, and its REPORT lines), from the local runtime.
        self.lambda_duration = Histogram(
            "lambda_duration_seconds",
            "Each invocation's Duration",
            ["function"],
            registry=self.registry,
            buckets=DURATION_BUCKETS,
        )
        self.lambda_init = Histogram(
            "lambda_init_duration_seconds",
            "Each cold start's Init Duration",
            ["function"],
            registry=self.registry,
            buckets=INIT_BUCKETS,
        )
        self.lambda_memory = Gauge(
            "lambda_max_memory_used_megabytes",
            "Max Memory Used of the last invocation",
            ["function"],
            registry=self.registry,
        )

    def watch(self, runtime: LambdaRuntime) -> None:
        """The runtime's counts (invocations, errors, throttles) and its concurrent executions at each scrape."""
        self.registry.register(_RuntimeCounts(runtime))

    def report(self, report: Report) -> None:
        """One invocation's REPORT line."""
        self.lambda_duration.labels(report.function).observe(report.duration_ms / 1000)
        if report.init_ms is not None:
            self.lambda_init.labels(report.function).observe(report.init_ms / 1000)
        self.lambda_memory.labels(report.function).set(report.max_memory_mb)

    def record(self, emf: dict[str, Any]) -> None:
        """One EMF record: every metric it names, with its labels read from the record's dimensions."""
        self.records += 1
        for directive in emf.get("_aws", {}).get("CloudWatchMetrics", []):
            for definition in directive.get("Metrics", []):
                spec = SPECS.get(definition.get("Name", ""))
                if spec is None:
                    continue  # Powertools' own (ColdStart) or another service's
                values = emf.get(spec.name)
                labels = {label: str(emf.get(label, "")) for label in spec.labels}
                for value in values if isinstance(values, list) else [values]:
                    if value is not None:
                        self.apply(spec, float(value), labels)

    def apply(self, spec: MetricSpec, value: float, labels: dict[str, str]) -> None:
        metric = self._metrics[spec.name]
        child = metric.labels(**labels) if spec.labels else metric
        if spec.kind is Kind.COUNTER:
            child.inc(value)  # type: ignore[union-attr]
        elif spec.kind is Kind.HISTOGRAM:
            child.observe(value)  # type: ignore[union-attr]
        else:
            child.set(value)  # type: ignore[union-attr]

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class _RuntimeCounts(Collector):
    """AWS/Lambda's Invocations, Errors, Throttles and ConcurrentExecutions per function."""

    def __init__(self, runtime: LambdaRuntime) -> None:
        self._runtime = runtime

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        families = {
            "invocations": CounterMetricFamily("lambda_invocations", "Invocations", labels=["function"]),
            "errors": CounterMetricFamily("lambda_errors", "Errors, timeouts and crashes", labels=["function"]),
            "throttles": CounterMetricFamily("lambda_throttles", "Invocations refused at a cap", labels=["function"]),
        }
        concurrency = GaugeMetricFamily("lambda_concurrent_executions", "Invocations running", labels=["function"])
        for function in self._runtime.function_names():
            stats = self._runtime.stats(function)
            families["invocations"].add_metric([function], stats.invocations)
            families["errors"].add_metric([function], stats.errors + stats.crashes)
            families["throttles"].add_metric([function], stats.throttles)
            concurrency.add_metric([function], self._runtime.concurrent_executions(function))
        yield from families.values()
        yield concurrency
