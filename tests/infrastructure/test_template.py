"""Properties of template.yaml that the design relies on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from couponcore.domain.issue_route import IssueRoute
from localdev.template import PARAMETER_SETS, Template, load_template, parameter_set

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
PARAMETER_SET_NAMES = sorted(path.stem for path in PARAMETER_SETS.glob("*.json"))
ISSUE_ROUTE_KEYS = [f"POST {route.path}" for route in IssueRoute]
CONTRACT_ROUTES = {
    *ISSUE_ROUTE_KEYS,
    "POST /coupons",
    "GET /coupons/{couponId}",
    "GET /coupons/{couponId}/issues/{userId}",
    "GET /users/{userId}/coupons",
    "PUT /coupons/{couponId}/issues/{userId}/redemption",
    "DELETE /coupons/{couponId}/issues/{userId}/redemption",
    "GET /health",
    "GET /health/live",
    "GET /health/ready",
    "GET /openapi.json",
    "GET /docs",
}


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def test_routes_are_exactly_the_contract() -> None:
    declared = [route.route_key for route in Template(TEMPLATE_PATH).routes]
    assert sorted(declared) == sorted(CONTRACT_ROUTES)


def test_every_function_has_the_layer(template: dict[str, Any]) -> None:
    assert template["Globals"]["Function"]["Layers"] == [{"Ref": "CouponCoreLayer"}]
    for properties in (f["Properties"] for f in functions(template).values()):
        assert "Layers" not in properties  # none overrides the global layer list
    layer = template["Resources"]["CouponCoreLayer"]
    assert layer["Metadata"]["BuildMethod"].startswith("python3")


def test_every_function_folder_exists(template: dict[str, Any]) -> None:
    for properties in (f["Properties"] for f in functions(template).values()):
        module = properties["Handler"].split(".")[0]
        assert (TEMPLATE_PATH.parent / properties["CodeUri"] / f"{module}.py").is_file()


def test_queue_redrives_to_a_dlq_and_outlives_the_consumer(template: dict[str, Any]) -> None:
    queue = template["Resources"]["IssueQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["IssueDeadLetterQueue", "Arn"]}
    assert int(queue["RedrivePolicy"]["maxReceiveCount"]) >= 2
    consumer = template["Resources"]["BatchPersistFunction"]["Properties"]
    assert int(queue["VisibilityTimeout"]) >= 6 * int(consumer["Timeout"])


def test_the_recount_bound_is_the_queues_longest_stay(template: dict[str, Any]) -> None:
    """After a Redis loss a coupon waits at most until every message sent before it has left the queue."""
    queue = template["Resources"]["IssueQueue"]["Properties"]
    stay = queue["VisibilityTimeout"] * queue["RedrivePolicy"]["maxReceiveCount"]
    assert template["Globals"]["Function"]["Environment"]["Variables"]["QUEUE_LONGEST_STAY_S"] == str(stay)


def test_event_source_mapping_reports_partial_failures_and_caps_concurrency(template: dict[str, Any]) -> None:
    mapping = template["Resources"]["BatchPersistFunction"]["Properties"]["Events"]["Reservations"]
    assert mapping["Type"] == "SQS"
    assert mapping["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert 2 <= int(mapping["Properties"]["ScalingConfig"]["MaximumConcurrency"]) <= 1000
    assert float(mapping["Properties"]["MaximumBatchingWindowInSeconds"]) > 0


def test_reconcile_runs_on_a_schedule(template: dict[str, Any]) -> None:
    events = template["Resources"]["ReconcileFunction"]["Properties"]["Events"]
    assert any(e["Type"] in ("Schedule", "ScheduleV2") for e in events.values())


def test_no_wildcard_actions_allowed(template: dict[str, Any]) -> None:
    """Wildcards only deny (the queue's TLS-only rule); nothing allows a whole service."""

    def allowed(node: Any) -> list[str]:
        if isinstance(node, dict):
            action = node.get("Action", []) if node.get("Effect") == "Allow" else []
            found = [action] if isinstance(action, str) else list(action)
            return found + [a for value in node.values() for a in allowed(value)]
        if isinstance(node, list):
            return [a for item in node for a in allowed(item)]
        return []

    assert not [a for a in allowed(template["Resources"]) if a == "*" or a.endswith(":*")]


def test_local_gateway_serves_what_the_template_declares() -> None:
    from localdev.gateway import HttpApiGateway

    gateway = HttpApiGateway(Template(TEMPLATE_PATH), runtime=None, sink=None, verify_tokens=True)  # type: ignore[arg-type]
    for route_key in CONTRACT_ROUTES:
        method, path = route_key.split(" ")
        concrete = path.replace("{couponId}", "7").replace("{userId}", "42")
        matched = gateway.match(method, concrete)
        assert matched is not None and matched[0].route_key == route_key


def test_dashboard_body_is_json_and_names_real_metrics(template: dict[str, Any]) -> None:
    import json
    import re

    from couponcore.metrics import ALL_METRICS

    body = template["Resources"]["CouponDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    rendered = re.sub(r"\$\{[^}]+\}", "x", body)  # what !Sub leaves: valid JSON once filled
    dashboard = json.loads(rendered)
    assert len(dashboard["widgets"]) >= 8
    used = set(re.findall(r"coupon_[a-z_]+", rendered)) - {"coupon_id"}  # coupon_id is a dimension
    assert used <= {spec.name for spec in ALL_METRICS}


def test_alarms_cover_what_an_operator_must_hear_about(template: dict[str, Any]) -> None:
    alarms = {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == "AWS::CloudWatch::Alarm"}
    assert set(alarms) >= {
        "Api5xxRateAlarm",
        "LatencyP99Alarm",
        "DeadLettersAlarm",
        "OldestReservationAlarm",
        "ReconcileDriftAlarm",
        "SeatsPausedAlarm",
    }
    assert all(alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}] for alarm in alarms.values())


def test_issue_and_status_routes_use_the_jwt_authorizer_and_admin_routes_iam() -> None:
    authorizers = {route.route_key: route.authorizer for route in Template(TEMPLATE_PATH).routes}
    for key in (*ISSUE_ROUTE_KEYS, "GET /coupons/{couponId}/issues/{userId}"):
        assert authorizers[key] == "CouponJwt", key
    assert authorizers["POST /coupons"] == authorizers["GET /coupons/{couponId}"] == "AWS_IAM"
    public = ("GET /health", "GET /health/live", "GET /health/ready", "GET /openapi.json", "GET /docs")
    assert {authorizers[route] for route in public} == {"NONE"}


# Each route's time in one container (seconds): the p99 of its REPORT durations on the local runtime, rounded up
# (docs/capacity.md). The status route's is taken under a polling storm at its rate (`make bench`: 30
# containers share two cores there, so it is several times AWS's); V1-async's requests queue for one lock;
# the health routes include a probe when the cached report is stale.
ROUTE_DURATION_S = {
    "POST /v1/issue": 0.02,
    "POST /v1/issue-async": 0.2,
    "POST /v2/issue-async": 0.02,
    "GET /health/live": 0.002,
    "GET /coupons/{couponId}/issues/{userId}": 0.05,
    "POST /coupons": 0.05,
    "GET /coupons/{couponId}": 0.02,
    "GET /users/{userId}/coupons": 0.05,
    "PUT /coupons/{couponId}/issues/{userId}/redemption": 0.02,
    "DELETE /coupons/{couponId}/issues/{userId}/redemption": 0.02,
    "GET /health": 0.1,
    "GET /health/ready": 0.1,
    "GET /openapi.json": 0.1,
    "GET /docs": 0.1,
}


def test_http_api_throttles_issue_routes_and_allows_web_clients(template: dict[str, Any]) -> None:
    api = template["Resources"]["CouponHttpApi"]["Properties"]
    # Every route is sized (ROUTE_DURATION_S); none falls back to the default throttle.
    assert set(api["RouteSettings"]) == CONTRACT_ROUTES == set(ROUTE_DURATION_S)
    for settings in api["RouteSettings"].values():
        assert set(settings) == {"ThrottlingRateLimit", "ThrottlingBurstLimit"}
    jwt = api["Auth"]["Authorizers"]["CouponJwt"]["JwtConfiguration"]
    assert jwt == {"issuer": {"Ref": "JwtIssuer"}, "audience": {"Ref": "JwtAudience"}}
    assert "idempotency-key" in api["CorsConfiguration"]["AllowHeaders"]


def test_functions_trace_keep_logs_and_protect_mysql(template: dict[str, Any]) -> None:
    globals_ = template["Globals"]["Function"]
    assert globals_["Tracing"] == "Active"
    assert globals_["Environment"]["Variables"]["REQUIRE_IDENTITY"] == "true"
    assert globals_["LoggingConfig"] == {"LogFormat": "JSON", "LogGroup": {"Ref": "FunctionLogs"}}
    for name, function in functions(template).items():
        assert "LoggingConfig" not in function["Properties"], f"{name} logs somewhere without a retention"
    for group in ("FunctionLogs", "ApiAccessLogs"):
        assert template["Resources"][group]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_optional_proxy_and_cache_are_conditional(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    assert resources["DbProxy"]["Condition"] == "UseRdsProxy"
    assert resources["DbProxyTargetGroup"]["Properties"]["ConnectionPoolConfigurationInfo"]["InitQuery"]
    assert resources["ServerlessCache"]["Condition"] == "UseServerlessCache"


def test_docker_compose_for_localstack_users() -> None:
    import yaml

    root = TEMPLATE_PATH.parent / "localstack"
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) == {"localstack", "mariadb", "valkey"}
    images = [service["image"] for service in services.values()]
    assert all(re.search(r":\d+\.\d+\.\d+$", image) for image in images), images  # pinned releases
    emulator = (TEMPLATE_PATH.parent / "requirements" / "localstack.in").read_text()
    assert services["localstack"]["image"].rsplit(":", 1)[1] in emulator  # one LocalStack release
    ports = {port.split(":")[-1] for service in services.values() for port in service["ports"]}
    assert ports == {"4566", "3306", "6379", "6380"}  # make run's plain ports, the deployed stack's TLS
    enabled = set(services["localstack"]["environment"]["SERVICES"].split(","))
    needed = {"sqs", "sns", "s3", "lambda", "iam", "logs", "cloudwatch", "secretsmanager", "scheduler", "ec2"}
    assert needed <= enabled and "cloudformation" in enabled, needed - enabled
    hook = root / "init" / "ready.d" / "01-issue-queues.sh"
    assert hook.stat().st_mode & 0o111 and "maxReceiveCount" in hook.read_text()
    assert "./init/ready.d:/etc/localstack/init/ready.d:ro" in services["localstack"]["volumes"]
    deploy = (root / "deploy-to-localstack.sh").read_text()
    assert "DbCaBundle=" in deploy and "RedisCaBundle=" in deploy and "DB_SSL" not in deploy  # TLS stays on


@pytest.mark.parametrize("parameter_set_name", PARAMETER_SET_NAMES)
def test_every_function_that_holds_mysql_connections_is_capped(
    template: dict[str, Any], parameter_set_name: str
) -> None:
    """MySQL's connections are the scarce resource: each function that holds them has a cap, and all caps
    together stay within what a small instance allows (about 100). With ReserveConcurrency the caps are
    reserved concurrency; without it (a new account) the account's whole quota is smaller than that."""
    documented = parameter_set(parameter_set_name)
    deployed = Template(TEMPLATE_PATH, documented["parameters"]).functions
    holders = (
        "IssueSyncFunction",
        "CouponsFunction",
        "WalletFunction",
        "OpsFunction",
        "ReconcileFunction",
        "MigrateFunction",
    )
    mapping = template["Resources"]["BatchPersistFunction"]["Properties"]["Events"]["Reservations"]["Properties"]
    if documented["parameters"]["ReserveConcurrency"] == "No":
        assert all(deployed[name].reserved_concurrency is None for name in deployed)
        assert documented["accountConcurrency"] <= 100
        return
    caps = {name: deployed[name].reserved_concurrency for name in holders}
    caps["BatchPersistFunction"] = int(mapping["ScalingConfig"]["MaximumConcurrency"])
    # Reserved like the others, and never below what the mapping sends (or batches would be throttled).
    assert deployed["BatchPersistFunction"].reserved_concurrency == caps["BatchPersistFunction"]
    # The async issue function reaches MySQL only as the cache's single loader of a coupon: capped for the
    # account's sake, by a parameter.
    assert deployed["IssueAsyncFunction"].reserved_concurrency == int(
        documented["parameters"].get("IssueAsyncConcurrency", 400)
    )
    assert template["Globals"]["Function"]["Environment"]["Variables"]["DB_POOL_SIZE"] == "1"
    assert all(caps.values()) and sum(cap or 0 for cap in caps.values()) <= 100, caps


# The sets that give each function a cap (without one, the account's quota is shared: docs/deploying.md).
CAPPED_SETS = [name for name in PARAMETER_SET_NAMES if parameter_set(name)["parameters"]["ReserveConcurrency"] == "Yes"]


@pytest.mark.parametrize("async_concurrency", [100, 200, 400, 800, 1600])
@pytest.mark.parametrize("parameter_set_name", CAPPED_SETS)
def test_route_throttles_answer_429_before_any_function_reaches_its_cap(
    template: dict[str, Any], parameter_set_name: str, async_concurrency: int
) -> None:
    """A throttled Lambda invocation reaches the client as API Gateway's 500; a route throttle's 429 says
    "back off". A token bucket lets `burst` requests in at once and `rate` a second after, each staying
    `duration`: so the routes of a capped function never hold more than the sum of burst + rate x duration."""
    assert template["Parameters"]["IssueAsyncConcurrency"]["AllowedValues"] == [100, 200, 400, 800, 1600]
    documented = parameter_set(parameter_set_name)
    deployed = Template(TEMPLATE_PATH, {**documented["parameters"], "IssueAsyncConcurrency": async_concurrency})
    held: dict[str, float] = {}
    for route in deployed.routes:
        throttle = deployed.route_throttles[route.route_key]
        assert throttle.burst >= 1 and throttle.rate >= 1
        most = throttle.burst + throttle.rate * ROUTE_DURATION_S[route.route_key]
        held[route.function] = held.get(route.function, 0.0) + most
    for function, most in held.items():
        cap = deployed.functions[function].reserved_concurrency
        assert cap is not None and most <= cap, (function, most, cap)
