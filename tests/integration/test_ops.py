"""GET /health and GET /openapi.json."""

from __future__ import annotations

import pytest

from couponcore import bootstrap
from localdev.events import http_api_event
from tests.support.lambdas import call

pytestmark = pytest.mark.usefixtures("clean_state")


def test_health_is_up_when_everything_answers() -> None:
    response = call("ops", http_api_event("GET", "/health"))
    assert response.status == 200
    assert response.body["status"] == "UP"
    assert set(response.body["checks"]) >= {"mysql", "redis"}


@pytest.mark.parametrize(("variable", "dependency"), [("DB_PORT", "mysql"), ("REDIS_PORT", "redis")])
def test_health_names_the_dependency_that_is_down(
    monkeypatch: pytest.MonkeyPatch, variable: str, dependency: str
) -> None:
    monkeypatch.setenv(variable, "1")
    bootstrap.reset()
    response = call("ops", http_api_event("GET", "/health"))
    assert response.status == 503
    assert response.body["status"] == "DOWN"
    assert response.body["checks"][dependency] == "DOWN"
    assert [name for name, state in response.body["checks"].items() if state == "DOWN"] == [dependency]


def test_openapi_document_lists_every_contract_route() -> None:
    response = call("ops", http_api_event("GET", "/openapi.json"))
    assert response.status == 200
    paths = response.body["paths"]
    assert set(paths) >= {
        "/v1/issue",
        "/coupons",
        "/coupons/{couponId}",
        "/coupons/{couponId}/issues/{userId}",
        "/health",
    }
    # The request body is the contract's: both ids, required, as strict positive integers.
    issue_schema = paths["/v1/issue"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    described = response.body["components"]["schemas"][issue_schema["$ref"].rsplit("/", 1)[1]]
    assert set(described["required"]) == {"couponId", "userId"}
    assert {described["properties"][name]["type"] for name in ("couponId", "userId")} == {"integer"}
    assert described["properties"]["couponId"]["exclusiveMinimum"] == 0
