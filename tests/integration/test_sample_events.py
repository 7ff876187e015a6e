"""Every sample event in events/ runs through its handler, with REQUIRE_IDENTITY on as in AWS."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from couponcore import bootstrap
from couponcore.bootstrap import services
from couponcore.domain.issue_route import IssueRoute
from couponcore.domain.reservation import ReservationMessage
from localdev.stack import BackgroundStack
from localdev.template import Template
from tests.support.database import issued_users
from tests.support.lambdas import invoke, issue_async, issue_v1, new_coupon_id, redeem
from tests.support.sqs import QueuePair

ROOT = Path(__file__).resolve().parents[2]
EVENTS = sorted((ROOT / "events").glob("*.json"))
TEMPLATE = Template(ROOT / "template.yaml")
FUNCTION_DIRS = {route.route_key: TEMPLATE.functions[route.function].code_dir.name for route in TEMPLATE.routes}
OTHERS = {"batch_persist_sqs.json": "batch_persist", "reconcile_schedule.json": "reconcile"}
ON_THE_RUNTIME = {"migrate.json": "MigrateFunction"}  # its code is migrations/, run as Lambda runs it


def signed(event: dict[str, Any]) -> dict[str, Any]:
    """The sample's reservations as the service sends them: signed with the stack's key."""
    for record in event["Records"]:
        body = json.loads(record["body"])
        message = ReservationMessage(body["couponId"], body["userId"], body["token"], body["reservedAt"])
        record["body"] = services().adapters.seal.seal(message)
    return event


def test_there_is_an_event_for_every_route() -> None:
    keys = {json.loads(path.read_text()).get("routeKey") for path in EVENTS}
    assert set(FUNCTION_DIRS) <= keys


@pytest.mark.parametrize("path", EVENTS, ids=[p.name for p in EVENTS])
def test_event_runs_through_its_handler(
    path: Path, issue_queue: QueuePair, lambda_runtime: BackgroundStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    if path.name in ON_THE_RUNTIME:
        assert lambda_runtime.invoke(ON_THE_RUNTIME[path.name], json.loads(path.read_text())) == {"revision": "0003"}
        return
    uses = path.name in ("redeem.json", "restore.json", "get_wallet.json")
    sync = path.name == "issue_v1.json" or uses
    coupon_id = new_coupon_id(totalQuantity=10, issueMode="SYNC" if sync else "ASYNC")
    if path.name == "get_issue_status.json":
        issue_async(IssueRoute.V2, coupon_id, 42)  # something to report
    if uses:
        assert issue_v1(coupon_id, 42).status == 200  # a coupon to use
    if path.name == "restore.json":
        assert redeem(coupon_id, 42, "order-1001").status == 200  # the order the event cancels
    monkeypatch.setenv("REQUIRE_IDENTITY", "true")
    bootstrap.reset()
    # The events name coupon 1: point them at the coupon this test created.
    event: dict[str, Any] = json.loads(path.read_text().replace('\\"couponId\\": 1', f'\\"couponId\\": {coupon_id}'))
    if "pathParameters" in event:
        event["pathParameters"]["couponId"] = str(coupon_id)
        event["rawPath"] = event["rawPath"].replace("/coupons/1", f"/coupons/{coupon_id}")
    directory = OTHERS.get(path.name) or FUNCTION_DIRS[event["routeKey"]]
    if path.name == "batch_persist_sqs.json":
        event = signed(event)
    response = invoke(directory, event)
    if path.name == "batch_persist_sqs.json":
        assert response == {"batchItemFailures": []}
        # Nothing failed because everything was persisted: each record's user holds a row.
        users = {json.loads(record["body"])["userId"] for record in event["Records"]}
        assert users and set(issued_users(coupon_id)) == users
    elif path.name == "reconcile_schedule.json":
        assert response["couponsChecked"] >= 1
    else:
        assert response["statusCode"] in (200, 201, 202), response
