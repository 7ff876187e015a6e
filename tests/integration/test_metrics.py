"""Metrics: every outcome counted, one EMF record per invocation, its Prometheus view, dashboards in sync."""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from couponcore import bootstrap, metrics
from couponcore.adapters.emf_metrics import invocation_metrics
from couponcore.adapters.mysql import create_admin_engine
from couponcore.config import Settings
from couponcore.domain.issue_route import IssueRoute
from localdev.metrics_sink import PrometheusSink
from tests.support.lambdas import issue_async, issue_v1, new_coupon_id
from tests.support.metrics import EmittedMetrics
from tests.support.sqs import QueuePair

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("clean_state")


def requests_by_outcome(emitted: EmittedMetrics, route: str) -> Counter[str]:
    emitted.read()
    found: Counter[str] = Counter()
    for family in emitted.sink.registry.collect():
        for s in family.samples:
            if s.name == "coupon_issue_requests_total" and s.labels["route"] == route:
                found[s.labels["outcome"]] = int(s.value)
    return found


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_every_v1_outcome_is_counted(monkeypatch: pytest.MonkeyPatch, emitted: EmittedMetrics) -> None:
    now = datetime.now(UTC)
    coupon_id = new_coupon_id(totalQuantity=1)
    issue_v1(coupon_id, 1)  # ISSUED
    issue_v1(coupon_id, 2)  # sold out
    unlimited = new_coupon_id(totalQuantity=None)
    issue_v1(unlimited, 1)
    issue_v1(unlimited, 1)  # duplicate
    issue_v1(new_coupon_id(dateIssueStart=iso(now + timedelta(hours=1)), dateIssueEnd=iso(now + timedelta(hours=2))), 1)
    issue_v1(10**12, 1)  # no such coupon
    issue_v1(new_coupon_id(issueMode="ASYNC"), 1)  # wrong mode
    issue_v1("x", 1)  # invalid
    monkeypatch.setenv("DB_LOCK_WAIT_TIMEOUT_S", "1")
    bootstrap.reset()
    blocker = create_admin_engine(Settings.from_env())
    with blocker.connect() as holder:
        holder.execute(text("SELECT id FROM coupons WHERE id = :id FOR UPDATE"), {"id": unlimited})
        issue_v1(unlimited, 9)  # 503
        holder.rollback()
    blocker.dispose()
    assert requests_by_outcome(emitted, "v1") == {
        "ISSUED": 2,
        "INVALID_COUPON_ISSUE_QUANTITY": 1,
        "DUPLICATED_COUPON_ISSUE": 1,
        "INVALID_COUPON_ISSUE_DATE": 1,
        "COUPON_NOT_EXIST": 1,
        "WRONG_ISSUE_MODE": 1,
        "INVALID_REQUEST": 1,
        "FAIL_COUPON_ISSUE_REQUEST": 1,
    }
    assert emitted.value(metrics.DEPENDENCY_ERRORS, dependency="mysql") == 1


def test_async_outcomes_and_reservations_sent(issue_queue: QueuePair, emitted: EmittedMetrics) -> None:
    coupon_id = new_coupon_id(totalQuantity=1, issueMode="ASYNC")
    issue_async(IssueRoute.V2, coupon_id, 1)
    issue_async(IssueRoute.V2, coupon_id, 1)
    issue_async(IssueRoute.V2, coupon_id, 2)
    assert requests_by_outcome(emitted, "v2") == {
        "RESERVED": 1,
        "DUPLICATED_COUPON_ISSUE": 1,
        "INVALID_COUPON_ISSUE_QUANTITY": 1,
    }
    assert emitted.value(metrics.RESERVATIONS_SENT, route="v2") == 1
    assert emitted.value(metrics.ISSUE_LATENCY, "_count", route="v2") == 3


def test_an_invocation_leaves_one_emf_record(capsys: pytest.CaptureFixture[str]) -> None:
    coupon_id = new_coupon_id(totalQuantity=5)
    capsys.readouterr()
    assert issue_v1(coupon_id, 1).status == 200
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert len(records) == 1, records
    record = records[0]
    directive = record["_aws"]["CloudWatchMetrics"][0]
    emitted = {definition["Name"] for definition in directive["Metrics"]}
    assert {"coupon_issue_requests", "coupon_issue_latency_seconds"} <= emitted <= set(metrics.SPECS)
    assert (record["route"], record["outcome"], record["coupon_issue_requests"]) == ("v1", "ISSUED", [1.0])
    assert directive["Namespace"] == invocation_metrics.namespace
    assert {"route", "outcome"} <= set(directive["Dimensions"][0])


def prometheus_names_in(expression: str) -> set[str]:
    # What the local /metrics serves: the functions' metrics and the gateway's own.
    known = {family.name for family in PrometheusSink().registry.collect()}
    found = set()
    for token in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expression):
        base = re.sub(r"_(total|bucket|count|sum)$", "", token)
        if base.startswith(("coupon_", "apigateway_")):
            assert base in known, f"dashboard queries unknown metric {token}"
            found.add(base)
    return found


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in dashboard.get("panels", []):
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


def test_every_prometheus_dashboard_query_names_a_real_metric() -> None:
    dashboard = json.loads((ROOT / "observability/grafana/dashboards/coupon-local.json").read_text())
    used = set()
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            used |= prometheus_names_in(target["expr"])
    assert {"coupon_issue_requests", "coupon_issue_latency_seconds", "coupon_cache_lookups"} <= used


def test_every_cloudwatch_dashboard_metric_is_a_real_metric() -> None:
    known = {spec.name for spec in metrics.ALL_METRICS}
    dashboard = json.loads((ROOT / "observability/grafana/dashboards/coupon-cloudwatch.json").read_text())
    names = {
        t["metricName"]
        for p in panels(dashboard)
        for t in p.get("targets", [])
        if t.get("namespace") == invocation_metrics.namespace
    }
    assert names and names <= known
