"""What a first deployment to a real account depends on: network paths, timeouts that nest, TLS, the
runtime, least privilege, the alarms and logs an operator of a sale needs."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from couponcore.adapters.aws import worst_call_s
from couponcore.adapters.lambda_adapters import LambdaAdapters
from couponcore.config import Settings
from couponcore.services.async_issue import lock_lease_s
from couponcore.services.recount import MARGIN_S, REBUILD_CALLS, RecountCosts
from localdev.template import Template, load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = ROOT / "template.yaml"
ISSUE_FUNCTIONS = ("IssueSyncFunction", "IssueAsyncFunction")
LAMBDA_RUNTIME = "python3.13"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: v["Properties"] for k, v in template["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}


def statements(node: Any) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        found = [node] if "Effect" in node else []
        return found + [s for value in node.values() for s in statements(value)]
    if isinstance(node, list):
        return [s for item in node for s in statements(item)]
    return []


@pytest.mark.parametrize("name", sorted(Template(TEMPLATE_PATH).functions))
def test_every_wait_of_a_function_ends_inside_its_timeout(name: str) -> None:
    """The deployed settings (the template's environment, the code's defaults): each client gives up
    before Lambda would kill the invocation, so the function answers 503 instead of timing out."""
    config = Template(TEMPLATE_PATH).functions[name]
    # The CA bundles are files of the deployed layer (/opt/...): test_the_layer_ships_the_rds_bundle has them.
    settings = Settings.from_env({k: v for k, v in config.environment.items() if v and not k.endswith("_CA")})
    waits = {
        "sqs send": worst_call_s(settings.sqs_timeout_s),
        "secret read": worst_call_s(settings.secrets_timeout_s),
        "mysql connect + slowest statement": settings.db_connect_timeout_s + settings.db_lock_wait_timeout_s + 2,
        "v1-async lock wait + lease": settings.lock_wait_s
        + lock_lease_s(settings.lock_lease_s, settings.redis_timeout_s),
        "redis call": settings.redis_timeout_s,
        # A recount tried by an issue request: each step starts only with its own worst case left.
        **{f"recount step: {step}": cost for step, cost in recount_steps(LambdaAdapters(settings).recount_costs)},
    }
    too_long = {what: s for what, s in waits.items() if s >= config.timeout_s}
    assert not too_long, f"{name} (Timeout {config.timeout_s} s) could wait {too_long}"


def recount_steps(costs: RecountCosts) -> list[tuple[str, float]]:
    return [
        ("mysql read", costs.mysql_s + MARGIN_S),
        ("rebuild", REBUILD_CALLS * costs.redis_s + MARGIN_S),
        ("queue counts", costs.queue_s + MARGIN_S),
    ]


def test_the_consumer_fits_its_queue_and_the_proxy_lends_inside_every_timeout(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    consumer_timeout = int(resources["BatchPersistFunction"]["Properties"]["Timeout"])
    assert int(resources["IssueQueue"]["Properties"]["VisibilityTimeout"]) >= 6 * consumer_timeout
    borrow = resources["DbProxyTargetGroup"]["Properties"]["ConnectionPoolConfigurationInfo"]["ConnectionBorrowTimeout"]
    shortest = min(
        int(f.get("Timeout", template["Globals"]["Function"]["Timeout"])) for f in functions(template).values()
    )
    assert int(borrow) < shortest


def test_aws_clients_are_built_in_one_place_with_short_timeouts() -> None:
    """botocore's defaults wait 60 s to connect: every client of the layer takes adapters/aws.py's config."""
    layer = ROOT / "layers" / "couponcore" / "couponcore"
    for source in layer.rglob("*.py"):
        text = source.read_text()
        for call in re.findall(r"boto3\.client\([^)]*\)", text):
            assert "config=client_config(" in call, f"{source.name}: {call}"
        if "Provider(" in text:
            assert source.name == "aws.py" and "boto_config=client_config(" in text, source.name
    assert "from aws_lambda_powertools.utilities import parameters" not in "".join(
        s.read_text() for s in layer.rglob("*.py")
    ), "the module-level Parameters helpers build clients with botocore's defaults"


def test_private_subnets_reach_sqs_and_secrets_manager(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    endpoints = {k: v for k, v in resources.items() if v["Type"] == "AWS::EC2::VPCEndpoint"}
    services = {v["Properties"]["ServiceName"]["Fn::Sub"].rsplit(".", 1)[-1] for v in endpoints.values()}
    assert services == {"sqs", "secretsmanager"}
    for endpoint in endpoints.values():
        assert endpoint["Condition"] == "UseVpcEndpoints"
        assert endpoint["Properties"]["PrivateDnsEnabled"] is True  # the SDK's default host names resolve to it
    assert template["Parameters"]["CreateVpcEndpoints"]["Default"] == "Yes"


def test_tls_to_every_dependency(template: dict[str, Any]) -> None:
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["DB_SSL"] == variables["REDIS_SSL"] == "true"
    assert variables["DB_SSL_CA"] == {"Ref": "DbCaBundle"}
    bundle = template["Parameters"]["DbCaBundle"]["Default"]
    assert bundle.startswith("/opt/python/couponcore/")  # the layer's folder in Lambda
    assert "rds-global-bundle.pem" in (ROOT / "Makefile").read_text()  # make deploy fetches it there
    assert template["Resources"]["DbProxy"]["Properties"]["RequireTLS"] is True


def test_the_layer_ships_the_rds_bundle(template: dict[str, Any]) -> None:
    """`sam build` and `sam deploy` alone must deploy a stack that verifies RDS: the bundle is in the layer's
    source, at the path the template's default names, and holds every region's current authorities."""
    from cryptography import x509

    default = template["Parameters"]["DbCaBundle"]["Default"]
    bundle = ROOT / "layers" / "couponcore" / default.removeprefix("/opt/python/")
    certificates = x509.load_pem_x509_certificates(bundle.read_bytes())
    names = {c.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value for c in certificates}
    for region in ("us-east-1", "eu-west-1", "ap-northeast-2", "ap-southeast-1", "sa-east-1"):
        assert f"Amazon RDS {region} Root CA RSA2048 G1" in names, region
    assert all(c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca for c in certificates)


def test_the_current_runtime_on_graviton_for_functions_and_layer(template: dict[str, Any]) -> None:
    globals_ = template["Globals"]["Function"]
    assert (globals_["Runtime"], globals_["Architectures"]) == (LAMBDA_RUNTIME, ["arm64"])
    assert all("Runtime" not in f and "Architectures" not in f for f in functions(template).values())
    layer = template["Resources"]["CouponCoreLayer"]
    assert layer["Properties"]["CompatibleRuntimes"] == [LAMBDA_RUNTIME]
    assert layer["Metadata"] == {"BuildMethod": LAMBDA_RUNTIME, "BuildArchitecture": "arm64"}
    pins = (ROOT / "layers" / "couponcore" / "requirements.txt").read_text()
    assert re.search(r"^boto3==", pins, re.M), "boto3 ships with the layer, pinned"


def test_issue_functions_start_from_a_snapshot_unless_told_not_to(template: dict[str, Any]) -> None:
    for name in ISSUE_FUNCTIONS:
        properties = functions(template)[name]
        assert properties["AutoPublishAlias"] == "live"
        assert properties["SnapStart"] == {"ApplyOn": {"Fn::If": ["UseSnapStart", "PublishedVersions", "None"]}}
        assert "snapstart.register()" in (ROOT / properties["CodeUri"] / "app.py").read_text()
    assert template["Parameters"]["IssueColdStarts"]["AllowedValues"] == ["SnapStart", "None"]


def test_least_privilege_no_resource_wildcards(template: dict[str, Any]) -> None:
    for statement in statements(template["Resources"]):
        resources = statement.get("Resource", [])
        assert "*" not in (resources if isinstance(resources, list) else [resources]), statement
    batch = template["Resources"]["BatchPersistFunction"]["Properties"]
    assert batch["Role"] == {"Fn::GetAtt": ["BatchPersistRole", "Arn"]}  # not SAM's policy for every queue
    sqs = [s for s in statements(template["Resources"]["BatchPersistRole"]) if "sqs:ReceiveMessage" in s["Action"]]
    assert sqs and all(s["Resource"] == {"Fn::GetAtt": ["IssueQueue", "Arn"]} for s in sqs)


def test_the_operator_sees_refusals_errors_and_throttles(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    access = resources["CouponHttpApi"]["Properties"]["AccessLogSettings"]
    fields = json.loads(access["Format"])
    assert {"status", "authorizerError", "integrationStatus", "integrationError", "route"} <= set(fields)
    alarmed = {
        (a["Properties"]["MetricName"], a["Properties"]["Dimensions"][0]["Value"]["Ref"])
        for a in resources.values()
        if a["Type"] == "AWS::CloudWatch::Alarm" and a["Properties"].get("Namespace") == "AWS/Lambda"
    }
    for name in functions(template):
        if name != "MigrateFunction":  # run by hand at deploy time; its failure fails `make deploy`
            assert {("Errors", name), ("Throttles", name)} <= alarmed, name


def test_web_clients_read_retry_after_and_no_placeholder_origin(template: dict[str, Any]) -> None:
    cors = template["Resources"]["CouponHttpApi"]["Properties"]["CorsConfiguration"]
    assert "retry-after" in [h.lower() for h in cors["ExposeHeaders"]]
    assert "Default" not in template["Parameters"]["CorsAllowOrigins"]
    assert "example.com" not in TEMPLATE_PATH.read_text()


def test_the_schedule_retries_and_the_cache_is_valkey_with_limits_and_a_user(template: dict[str, Any]) -> None:
    resources = template["Resources"]
    schedule = resources["ReconcileFunction"]["Properties"]["Events"]["EveryMinute"]["Properties"]
    assert int(schedule["RetryPolicy"]["MaximumEventAgeInSeconds"]) <= 60  # never overlaps the next pass
    assert template["Parameters"]["CacheEngine"]["Default"] == "valkey"
    cache = resources["ServerlessCache"]["Properties"]
    assert set(cache["CacheUsageLimits"]) == {"DataStorage", "ECPUPerSecond"}
    assert cache["UserGroupId"] == {"Ref": "CacheUserGroup"}
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["REDIS_CLUSTER"] == {"Fn::If": ["UseServerlessCache", "true", {"Ref": "RedisClusterMode"}]}


def test_a_deploy_meets_only_the_user_s_aws_settings() -> None:
    """The Makefile exported the local emulator's region and keys to every target: the migration step of
    `make deploy` then looked for the stack in the wrong region. Nothing local is exported now, samconfig
    names no region, and the deploy and the migrations get the same --region or none."""
    makefile = (ROOT / "Makefile").read_text()
    assert not re.search(r"^export AWS_", makefile, re.M)
    samconfig = (ROOT / "samconfig.toml").read_text()
    default_deploy = samconfig.split("[default.deploy.parameters]")[1].split("[")[0]
    assert "region" not in default_deploy and "parameter_overrides" not in default_deploy
    deploy = (ROOT / "scripts" / "deploy.py").read_text()
    assert deploy.count("*region") == 2  # sam deploy and migrate_aws.py alike


def test_a_deploy_asks_no_question_and_builds_with_the_runtime_s_python() -> None:
    """A guided deploy asks "has no authentication. Is this okay? [y/N]" for the public routes, and its
    default aborts; sam build of python3.13 fails without a python3.13 on PATH."""
    makefile = (ROOT / "Makefile").read_text()
    assert "--guided" not in makefile
    assert "scripts/python313.sh" in makefile.split("SAM_BUILD =")[1].splitlines()[0]
    import importlib.util

    spec = importlib.util.spec_from_file_location("deploy_script", ROOT / "scripts" / "deploy.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.overrides({"SubnetIds": ["subnet-a", "subnet-b"], "Stage": "dev"}) == [
        "SubnetIds=subnet-a,subnet-b",
        "Stage=dev",
    ]


def test_snapstart_versions_do_not_pile_up(template: dict[str, Any]) -> None:
    for name in ISSUE_FUNCTIONS:
        assert functions(template)[name]["VersionDeletionPolicy"] == "Delete"


def test_every_function_and_tool_has_a_sample_event() -> None:
    assert json.loads((ROOT / "events" / "migrate.json").read_text()) == {}
