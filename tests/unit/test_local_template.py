"""The local stack's reading of template.yaml: routes, and each function's configuration as deployed."""

from __future__ import annotations

from pathlib import Path

from localdev.stack import LocalStack, StackOptions
from localdev.template import Template

TEMPLATE_PATH = Path(__file__).resolve().parents[2] / "template.yaml"
TEMPLATE = Template(TEMPLATE_PATH)


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
    functions = TEMPLATE.functions
    assert functions["IssueSyncFunction"].reserved_concurrency == 50
    assert functions["ReconcileFunction"].reserved_concurrency == 1
    assert functions["IssueAsyncFunction"].reserved_concurrency == 400  # the parameter's default
    assert (functions["BatchPersistFunction"].timeout_s, functions["BatchPersistFunction"].memory_mb) == (30, 1024)
    assert all(config.tracing for config in functions.values())
    assert all(config.layer_dirs == (TEMPLATE_PATH.parent / "layers" / "couponcore",) for config in functions.values())


def test_a_container_environment_is_the_template_s_with_local_endpoints() -> None:
    stack = LocalStack(TEMPLATE_PATH, StackOptions())
    env = stack.environment(TEMPLATE.functions["IssueSyncFunction"])
    # The template's own settings, unchanged.
    assert (env["DB_POOL_SIZE"], env["DB_MAX_OVERFLOW"], env["REQUIRE_IDENTITY"]) == ("1", "0", "true")
    assert env["DB_INIT_SESSION"] == "true"  # no RDS Proxy in a local stack
    assert env["POWERTOOLS_SERVICE_NAME"] == "coupon" and env["USER_ID_CLAIM"] == "sub"
    # Endpoints and credentials are local; the secret's ARN has no meaning here.
    assert env["DB_HOST"] == "127.0.0.1" and env["DB_SSL"] == "false" and env["REDIS_SSL"] == "false"
    assert "DB_SECRET_ARN" not in env
    # What Lambda itself sets, and the layer where /opt/python would be.
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "IssueSyncFunction"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    assert env["PYTHONPATH"].split(":")[1].endswith("layers/couponcore")
    assert "POWERTOOLS_TRACE_DISABLED" not in env and "POWERTOOLS_METRICS_DISABLED" not in env


def test_development_identity_mode_is_the_only_other_difference() -> None:
    deployed = LocalStack(TEMPLATE_PATH, StackOptions()).environment(TEMPLATE.functions["CouponsFunction"])
    dev = LocalStack(TEMPLATE_PATH, StackOptions(auth="dev")).environment(TEMPLATE.functions["CouponsFunction"])
    assert {k for k in deployed if deployed[k] != dev.get(k)} == {"REQUIRE_IDENTITY"}
    assert dev["REQUIRE_IDENTITY"] == "false"
