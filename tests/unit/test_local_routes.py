"""The local server's reading of template.yaml and its path matching."""

from __future__ import annotations

from pathlib import Path

from localdev.template_routes import http_routes

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"


def test_contract_routes_are_declared() -> None:
    declared = {route.route_key for route in http_routes(TEMPLATE)}
    assert {
        "POST /v1/issue",
        "POST /coupons",
        "GET /coupons/{couponId}",
        "GET /coupons/{couponId}/issues/{userId}",
        "GET /health",
        "GET /openapi.json",
    } <= declared


def test_path_parameters_are_extracted() -> None:
    routes = {route.route_key: route for route in http_routes(TEMPLATE)}
    status = routes["GET /coupons/{couponId}/issues/{userId}"].pattern.match("/coupons/7/issues/42")
    assert status and status.groupdict() == {"couponId": "7", "userId": "42"}
    assert routes["GET /coupons/{couponId}"].pattern.match("/coupons/7/issues/42") is None


def test_every_route_points_at_an_existing_handler() -> None:
    for route in http_routes(TEMPLATE):
        module, _, function = route.handler.rpartition(".")
        source = (route.code_dir / f"{module}.py").read_text()
        assert f"{function} =" in source or f"def {function}(" in source
