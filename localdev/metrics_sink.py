"""Prometheus metrics made from the EMF records the functions write to their logs.

In AWS, CloudWatch reads those records from the log groups; locally the runtime hands each one to
`PrometheusSink.record`, which adds it to one registry for all containers, served by the gateway at
GET /metrics. Names, kinds, labels and buckets come from couponcore.metrics, so the two views agree.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, gc_collector, process_collector
from prometheus_client.exposition import generate_latest

from couponcore.metrics import ALL_METRICS, SPECS, Kind, MetricSpec


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
