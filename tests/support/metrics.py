"""The metrics this process emitted, read back from its EMF output the way the local runtime reads a
container's log (localdev.metrics_sink), so tests check what CloudWatch and Prometheus would receive."""

from __future__ import annotations

import json

import pytest

from couponcore import metrics
from couponcore.adapters.emf_metrics import invocation_metrics
from localdev.metrics_sink import PrometheusSink


class EmittedMetrics:
    def __init__(self, capsys: pytest.CaptureFixture[str]) -> None:
        self._capsys = capsys
        self.sink = PrometheusSink()

    def read(self) -> None:
        invocation_metrics.flush_metrics()  # what a handler's log_metrics does at its end
        for line in self._capsys.readouterr().out.splitlines():
            if line.startswith('{"_aws"'):
                self.sink.record(json.loads(line))

    def value(self, spec: metrics.MetricSpec, suffix: str = "", **labels: str) -> float:
        """The sample's value so far (counters: their total; histograms: pass suffix "_count" or "_sum")."""
        self.read()
        name = spec.name + ("_total" if spec.kind is metrics.Kind.COUNTER and not suffix else suffix)
        return self.sink.registry.get_sample_value(name, labels) or 0.0
