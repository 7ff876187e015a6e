"""The metrics sink in Lambda: CloudWatch embedded metric format (EMF) records through Powertools.

An invocation's metrics leave as one EMF record when its handler returns (`log_metrics` on every
entry point). Its dimensions are the invocation's own: the route and outcome of an issue request
(`tag_invocation`). A metric with labels of its own (a release reason, a reconcile finding) is rare and
leaves at once as a record of its own, so that no label ever changes another metric's dimensions.
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools.metrics import Metrics, single_metric

from couponcore.metrics import INVOCATION_LABELS, MetricSpec

invocation_metrics = Metrics()
# An invocation with nothing to report (a health check) is normal here, not a mistake worth a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish", category=UserWarning)


class EmfMetrics:
    """The MetricsSink port on Powertools Metrics."""

    def __init__(self, namespace: str, *, enabled: bool = True) -> None:
        self._enabled = enabled
        invocation_metrics.namespace = namespace

    def tag_invocation(self, **dimensions: str) -> None:
        """Dimensions of this invocation's record (known only once the request is answered)."""
        if self._enabled:
            for name, value in dimensions.items():
                invocation_metrics.add_dimension(name=name, value=value)

    def _record(self, spec: MetricSpec, value: float, labels: dict[str, str]) -> None:
        if not self._enabled:
            return
        if INVOCATION_LABELS.issuperset(spec.labels):
            invocation_metrics.add_metric(name=spec.name, unit=spec.unit, value=value)
            return
        namespace = invocation_metrics.namespace
        with single_metric(name=spec.name, unit=spec.unit, value=value, namespace=namespace) as own_record:
            for name, label in labels.items():
                own_record.add_dimension(name=name, value=label)

    def count(self, spec: MetricSpec, value: float = 1, **labels: str) -> None:
        self._record(spec, value, labels)

    def observe(self, spec: MetricSpec, value: float, **labels: str) -> None:
        self._record(spec, value, labels)

    def set_gauge(self, spec: MetricSpec, value: float, **labels: str) -> None:
        self._record(spec, value, labels)
