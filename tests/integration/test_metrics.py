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
from localdev.stack import LocalDeployment, StackOptions
from localdev.template import load_template
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


def local_metric_names() -> set[str]:
    """What the local /metrics serves: the functions' metrics, the gateway's own and the runtime's."""
    sink = PrometheusSink()
    stack = LocalDeployment(options=StackOptions(port=0))
    sink.watch(stack.runtime)
    return {family.name for family in sink.registry.collect()}


def prometheus_names_in(expression: str, known: set[str]) -> set[str]:
    found = set()
    for token in re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expression):
        base = re.sub(r"_(total|bucket|count|sum)$", "", token)
        if base.startswith(("coupon_", "apigateway_", "lambda_")):
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
    known, used = local_metric_names(), set()
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            used |= prometheus_names_in(target["expr"], known)
    assert {"coupon_issue_requests", "coupon_issue_latency_seconds", "coupon_cache_lookups"} <= used
    assert {"lambda_duration_seconds", "lambda_init_duration_seconds", "lambda_concurrent_executions"} <= used
    assert {"lambda_throttles", "lambda_errors", "lambda_max_memory_used_megabytes"} <= used


# The AWS metrics the dashboards read, as AWS documents them for each namespace, and the fields of Lambda's
# JSON REPORT record (platform.report) their log queries read.
AWS_METRICS = {
    "AWS/Lambda": {"Invocations", "Errors", "Throttles", "Duration", "ConcurrentExecutions"},
    "AWS/ApiGateway": {"Count", "4xx", "5xx", "Latency", "IntegrationLatency"},
    "AWS/SQS": {"ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "NumberOfMessagesSent"},
    "AWS/RDS": {"CPUUtilization", "DatabaseConnections"},
    "AWS/ElastiCache": {
        "ElastiCacheProcessingUnits",
        "BytesUsedForCache",
        "EngineCPUUtilization",
        "DatabaseMemoryUsagePercentage",
    },
}
REPORT_FIELDS = {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs"}
# The panels both views of production have: what the seed's monitoring lists, per function.
LAMBDA_PANELS = {"Duration", "Init Duration", "concurrent executions", "throttles", "errors", "max memory"}


# The namespace the template gives the functions' own metrics.
NAMESPACE = load_template(ROOT / "template.yaml")["Globals"]["Function"]["Environment"]["Variables"][
    "POWERTOOLS_METRICS_NAMESPACE"
]


def assert_real(namespace: str, name: str) -> None:
    if namespace == NAMESPACE:
        assert name in {spec.name for spec in metrics.ALL_METRICS}, f"{namespace} has no metric {name}"
    else:
        assert name in AWS_METRICS[namespace], f"{namespace} has no metric {name}"


def assert_report_fields(query: str) -> None:
    fields = set(re.findall(r"record\.metrics\.(\w+)", query))
    assert fields and fields <= REPORT_FIELDS, fields - REPORT_FIELDS


def test_every_cloudwatch_dashboard_metric_is_a_real_metric() -> None:
    dashboard = json.loads((ROOT / "observability/grafana/dashboards/coupon-cloudwatch.json").read_text())
    named = 0
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            if target.get("queryMode") == "Logs":
                assert_report_fields(target["expression"])
            elif "metricName" in target:
                assert_real(target["namespace"], target["metricName"])
                named += 1
    assert named
    titles = " ".join(panel["title"] for panel in panels(dashboard))
    assert all(words in titles for words in LAMBDA_PANELS)


def test_the_stacks_dashboard_names_real_metrics_and_has_the_lambda_panels() -> None:
    """template.yaml's CloudWatch dashboard: its body is JSON, every metric it names or searches for exists,
    and its log query reads fields the REPORT record has."""
    resource = load_template(ROOT / "template.yaml")["Resources"]["CouponDashboard"]["Properties"]
    body = json.loads(re.sub(r"\$\{[^}]+\}", "X", resource["DashboardBody"]["Fn::Sub"]))
    searched = 0
    for widget in body["widgets"]:
        properties = widget["properties"]
        if widget["type"] == "log":
            assert_report_fields(properties["query"])
            continue
        for line in properties["metrics"]:
            if isinstance(line[0], dict):
                expression = line[0]["expression"]
                for namespace, name in re.findall(r"\{([^,}]+)[^}]*\} MetricName=\"(\w+)\"", expression):
                    assert_real(namespace, name)
                    searched += 1
                for name in re.findall(r"SELECT \w+\((\w+)\) FROM SCHEMA\((\S+),", expression):
                    assert_real(name[1], name[0])
            elif line[0] != ".":
                assert_real(line[0], line[1])
    assert searched
    titles = " ".join(widget["properties"]["title"] for widget in body["widgets"])
    assert all(words in titles for words in LAMBDA_PANELS)
    assert "success ratio" in titles and "per route" in titles and "RDS" in titles and "ECPU" in titles
