"""The local stack's reading of template.yaml: routes, and each function's configuration as deployed."""

from __future__ import annotations

from pathlib import Path

import pytest

from localdev.account import LocalAccount
from localdev.environment import LOCAL_CA
from localdev.runtime import LambdaRuntime, QuotaError
from localdev.stack import LocalDeployment, StackOptions
from localdev.template import Template, parameter_set

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
TEMPLATE = Template(TEMPLATE_PATH)
SECRET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:coupon-local/"
QUEUE = "http://127.0.0.1:4566/000000000000/coupon-issue"
# What the local account made, as provision() returns it (no emulator needed here).
ACCOUNT = LocalAccount(
    physical={
        "IssueQueue": QUEUE,
        "IssueQueue.Arn": "arn:aws:sqs:us-east-1:000000000000:coupon-issue",
        "IssueQueue.QueueName": "coupon-issue",
        "IssueDeadLetterQueue": f"{QUEUE}-dlq",
        "IssueDeadLetterQueue.Arn": "arn:aws:sqs:us-east-1:000000000000:coupon-issue-dlq",
        "IssueDeadLetterQueue.QueueName": "coupon-issue-dlq",
        "DbRuntimeSecret": f"{SECRET}db-runtime-AbCdEf",
        "MessageSigningSecret": f"{SECRET}signing-key-AbCdEf",
    },
    parameters={
        "DbAdminSecretArn": f"{SECRET}db-admin-AbCdEf",
        "RedisSecretArn": f"{SECRET}cache-user-AbCdEf",
        "DbCaBundle": str(LOCAL_CA),
        "RedisCaBundle": str(LOCAL_CA),
    },
)


def deployed(options: StackOptions | None = None) -> LocalDeployment:
    stack = LocalDeployment(TEMPLATE_PATH, options or StackOptions())
    stack.deploy(ACCOUNT)
    return stack


def test_contract_routes_are_declared() -> None:
    declared = {route.route_key for route in TEMPLATE.routes}
    assert {
        "POST /v1/issue",
        "POST /coupons",
        "GET /coupons/{couponId}",
        "GET /coupons/{couponId}/issues/{userId}",
        "GET /health",
        "GET /openapi.json",
    } <= declared


def test_path_parameters_are_extracted() -> None:
    routes = {route.route_key: route for route in TEMPLATE.routes}
    status = routes["GET /coupons/{couponId}/issues/{userId}"].pattern.match("/coupons/7/issues/42")
    assert status and status.groupdict() == {"couponId": "7", "userId": "42"}
    assert routes["GET /coupons/{couponId}"].pattern.match("/coupons/7/issues/42") is None


def test_every_route_points_at_an_existing_handler() -> None:
    for route in TEMPLATE.routes:
        config = TEMPLATE.functions[route.function]
        module, _, function = config.handler.rpartition(".")
        source = (config.code_dir / f"{module}.py").read_text()
        assert f"{function} =" in source or f"def {function}(" in source


def test_functions_get_the_deployed_configuration() -> None:
    """The local stack deploys the own-cache-acl set: every function's concurrency reserved."""
    functions = TEMPLATE.functions
    assert functions["IssueSyncFunction"].reserved_concurrency == 40
    assert functions["ReconcileFunction"].reserved_concurrency == 1
    assert functions["IssueAsyncFunction"].reserved_concurrency == 400  # the parameter's default
    assert (functions["BatchPersistFunction"].timeout_s, functions["BatchPersistFunction"].memory_mb) == (30, 1024)
    assert all(config.tracing for config in functions.values())
    assert all(config.layer_dirs == (TEMPLATE_PATH.parent / "layers" / "couponcore",) for config in functions.values())


def test_a_container_environment_is_the_template_s_with_local_endpoints() -> None:
    stack = deployed()
    env = stack.environment(TEMPLATE.functions["IssueSyncFunction"])
    # The template's own settings, unchanged.
    assert (env["DB_POOL_SIZE"], env["DB_MAX_OVERFLOW"], env["REQUIRE_IDENTITY"]) == ("1", "0", "true")
    assert env["DB_INIT_SESSION"] == "true"  # no RDS Proxy in a local stack
    assert env["POWERTOOLS_SERVICE_NAME"] == "coupon" and env["USER_ID_CLAIM"] == "sub"
    # The AWS layer as deployed: credentials from the account's secrets, verified TLS, the role's keys.
    assert env["DB_SECRET_ARN"] == ACCOUNT.physical["DbRuntimeSecret"]
    assert env["REDIS_SECRET_ARN"] == ACCOUNT.parameters["RedisSecretArn"]
    assert env["DB_SSL"] == env["REDIS_SSL"] == "true" and env["DB_SSL_CA"] == str(LOCAL_CA)
    assert "DB_USER" not in env and "DB_PASSWORD" not in env and "REDIS_PASSWORD" not in env
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA") and env["AWS_ACCESS_KEY_ID"] != "test"
    assert env["AWS_CA_BUNDLE"] == str(LOCAL_CA)
    # Only the endpoints are this machine's.
    assert env["DB_HOST"] == "127.0.0.1"
    # What Lambda itself sets, and the layer where /opt/python would be.
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "IssueSyncFunction"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["PYTHONPATH"].split(":")[1].endswith("layers/couponcore")
    # Tracing as the template deploys it (TraceCalls' default: Lambda's segments, no SDK), metrics on.
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true" and "POWERTOOLS_METRICS_DISABLED" not in env


def test_development_identity_mode_is_the_only_other_difference() -> None:
    as_deployed = deployed().environment(TEMPLATE.functions["CouponsFunction"])
    dev = deployed(StackOptions(auth="dev")).environment(TEMPLATE.functions["CouponsFunction"])
    assert {k for k in as_deployed if as_deployed[k] != dev.get(k)} == {"REQUIRE_IDENTITY"}
    assert dev["REQUIRE_IDENTITY"] == "false"


def test_the_local_account_refuses_reservations_it_cannot_give() -> None:
    """As CloudFormation does: Lambda keeps 100 of the account's concurrency unreserved."""
    with pytest.raises(QuotaError, match="UnreservedConcurrentExecution below its minimum"):
        LambdaRuntime(TEMPLATE.functions, lambda config: {}, account_concurrency=500)  # 482 reserved
    new_account = Template(TEMPLATE_PATH, parameter_set("new-account")["parameters"])
    LambdaRuntime(new_account.functions, lambda config: {}, account_concurrency=10)  # nothing reserved
