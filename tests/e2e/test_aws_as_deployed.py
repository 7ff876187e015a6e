"""The AWS layer as deployed, on `make run`'s stack: every function reads its credentials from Secrets
Manager and calls AWS with its role's keys through the IAM gateway, which judges each call with the role the
SAM transform wrote. After a tour that makes every function do what it does in production, no call was
refused and no permission of any role went unused. A forged reservation and an altered one are refused,
counted, and end in the dead-letter queue; nobody learns ISSUED from them."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from couponcore.adapters import redis_keys
from couponcore.bootstrap import services
from couponcore.domain.reservation import PendingReservation, ReservationMessage
from localdev.environment import LOCAL_CA
from localdev.events import schedule_event
from localdev.iam import role_credentials
from localdev.sqs_local import sqs_client
from tests.support.sqs import wait_until
from tests.support.tokens import ADMIN
from tests.support.tokens import as_user as user_token

pytestmark = pytest.mark.usefixtures("clean_state")


def audit(api_url: str) -> dict[str, Any]:
    answer: dict[str, Any] = httpx.get(f"{api_url}/_local/aws", timeout=10).json()
    return answer


def coupon(api_url: str, **fields: Any) -> int:
    body = {
        "title": "tour",
        "totalQuantity": 5,
        "discountAmount": 1000,
        "minAvailableAmount": 0,
        "dateIssueStart": "2020-01-01T00:00:00Z",
        "dateIssueEnd": "2099-01-01T00:00:00Z",
        **fields,
    }
    response = httpx.post(f"{api_url}/coupons", json=body, headers=ADMIN, timeout=30)
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def status(api_url: str, coupon_id: int, user: int) -> httpx.Response:
    return httpx.get(f"{api_url}/coupons/{coupon_id}/issues/{user}", headers=user_token(user), timeout=30)


def forgeries_counted(api_url: str) -> float:
    families = text_string_to_metric_families(httpx.get(f"{api_url}/metrics", timeout=10).text)
    return sum(s.value for f in families for s in f.samples if s.name == "coupon_forged_reservations_total")


def invoke(api_url: str, function: str, event: dict[str, Any]) -> Any:
    response = httpx.post(f"{api_url}/2015-03-31/functions/{function}/invocations", json=event, timeout=330)
    assert response.status_code == 200, response.text
    return response.json()


def queue_is_empty(api_url: str) -> bool:
    queue_url = audit(api_url)["account"]["physical"]["IssueQueue"]
    counts = sqs_client().get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    return not any(
        int(counts[name]) for name in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    )


def issued(api_url: str, coupon_id: int, user: int) -> bool:
    return bool(status(api_url, coupon_id, user).json().get("status") == "ISSUED")


def test_every_call_is_allowed_and_every_permission_is_used(api_url: str) -> None:
    # The async path, with a cache miss (the coupon's view gone from Redis): issue_async reads MySQL too.
    async_coupon = coupon(api_url)
    services().adapters.redis.delete(redis_keys.coupon_view(async_coupon))
    for user in (1, 2):
        response = httpx.post(
            f"{api_url}/v2/issue-async", json={"couponId": async_coupon, "userId": user}, headers=user_token(user)
        )
        assert response.status_code == 202, response.text
    wait_until(lambda: issued(api_url, async_coupon, 2), what="persisted through the queue")
    # V1, selling out: the refresh after commit reaches Redis.
    sync_coupon = coupon(api_url, totalQuantity=1, issueMode="SYNC")
    assert (
        httpx.post(
            f"{api_url}/v1/issue", json={"couponId": sync_coupon, "userId": 3}, headers=user_token(3)
        ).status_code
        == 200
    )
    # The coupon in its holder's wallet, then used at checkout by the order service (MySQL, and Redis's mark).
    assert httpx.get(f"{api_url}/users/3/coupons", headers=user_token(3), timeout=30).json()["items"]
    order = {"orderId": "order-1", "orderAmount": 10**6}
    redemption = f"{api_url}/coupons/{sync_coupon}/issues/3/redemption"
    assert httpx.put(redemption, json=order, headers=ADMIN, timeout=30).json()["code"] == "REDEEMED"
    assert httpx.get(f"{api_url}/health", timeout=30).status_code == 200
    # Redis lost two coupons' seats 10 s ago (every send begun before is done): the next request recounts
    # one of them, reconciliation the other; each first asks whether the queue still holds anything.
    wait_until(lambda: queue_is_empty(api_url), what="the queue emptied")
    ten_s_ago = int(time.time() * 1000) - 10_000
    recounted_by_a_request, recounted_by_reconcile = coupon(api_url), coupon(api_url)
    for lost in (recounted_by_a_request, recounted_by_reconcile):
        assert services().adapters.ledger.forget_count(lost, ten_s_ago)
    paused = httpx.post(
        f"{api_url}/v2/issue-async", json={"couponId": recounted_by_a_request, "userId": 5}, headers=user_token(5)
    )
    assert paused.status_code == 503 and paused.headers.get("Retry-After"), paused.text  # it recounts

    def sells_again() -> bool:
        body = {"couponId": recounted_by_a_request, "userId": 6}
        return httpx.post(f"{api_url}/v2/issue-async", json=body, headers=user_token(6)).status_code == 202

    wait_until(sells_again, what="the coupon recounted by a request, and selling again")
    # A reservation left behind by a crash between reserve and send: reconciliation sends it again.
    long_ago = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp() * 1000)
    services().adapters.seats.reserve(PendingReservation(async_coupon, 4, "crashed", long_ago), 5)
    reconciled = invoke(api_url, "ReconcileFunction", schedule_event("tour"))
    assert reconciled["resent"] >= 1 and recounted_by_reconcile in reconciled["recounted"], reconciled
    wait_until(lambda: issued(api_url, async_coupon, 4), what="the resent reservation persisted")
    assert invoke(api_url, "MigrateFunction", {})["revision"]
    # A forgery makes batch_persist put it in the dead letters (its own permission).
    account = audit(api_url)["account"]["physical"]
    sqs_client().send_message(
        QueueUrl=account["IssueQueue"],
        MessageBody=json.dumps({"couponId": async_coupon, "userId": 777, "token": "forged", "reservedAt": 1}),
    )
    wait_until(
        lambda: any(
            c["action"] == "sqs:SendMessage" and c["caller"] == "BatchPersistRole" for c in audit(api_url)["calls"]
        )
    )

    found = audit(api_url)
    refused = [c for c in found["calls"] if c["result"] != "Allowed"]
    assert refused == []
    assert found["unused"] == []
    # The audit is not empty-handed: each role's calls are there, judged one by one.
    assert len({(c["caller"], c["action"], c["resource"]) for c in found["calls"]}) >= 15
    callers = {c["caller"] for c in found["calls"]}
    assert {"IssueAsyncFunctionRole", "IssueSyncFunctionRole", "BatchPersistRole", "ReconcileFunctionRole"} <= callers
    assert {"CouponsFunctionRole", "WalletFunctionRole", "OpsFunctionRole", "MigrateFunctionRole"} <= callers


def test_a_call_the_role_does_not_allow_is_refused_as_in_aws(api_url: str) -> None:
    """The health function's role may read the queue's attributes, not send to it."""
    ops = sqs_client(audit(api_url)["gateway"], role_credentials("OpsFunctionRole"), str(LOCAL_CA))
    queue = audit(api_url)["account"]["physical"]["IssueQueue"]
    with pytest.raises(Exception, match="AccessDenied"):
        ops.send_message(QueueUrl=queue, MessageBody="{}")
    denied = [c for c in audit(api_url)["calls"] if c["result"] != "Allowed"]
    assert [(c["caller"], c["action"]) for c in denied][-1:] == [("OpsFunctionRole", "sqs:SendMessage")]


@pytest.mark.parametrize("how", ["forged", "altered"])
def test_only_the_service_issues_coupons(api_url: str, how: str) -> None:
    """Anyone who can reach the queue: a reservation the service did not sign, or one it signed but someone
    changed (another user, an earlier time), is refused, counted and dead-lettered; nobody is ISSUED."""
    coupon_id = coupon(api_url, totalQuantity=3)
    physical = audit(api_url)["account"]["physical"]
    sqs = sqs_client()
    if how == "forged":
        body = json.dumps({"couponId": coupon_id, "userId": 777, "token": "forged", "reservedAt": 1})
    else:
        genuine = services().adapters.seal.seal(ReservationMessage(coupon_id, 776, "genuine", int(time.time() * 1000)))
        body = genuine.replace('"userId":776', '"userId":777').replace('"token":"genuine"', '"token":"altered"')
    forged_before = forgeries_counted(api_url)
    sqs.send_message(QueueUrl=physical["IssueQueue"], MessageBody=body)

    def dead_lettered() -> bool:
        messages = sqs.receive_message(
            QueueUrl=physical["IssueDeadLetterQueue"], MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        for message in messages.get("Messages", []):
            sqs.delete_message(QueueUrl=physical["IssueDeadLetterQueue"], ReceiptHandle=message["ReceiptHandle"])
            if message["Body"] == body:
                return True
        return False

    wait_until(dead_lettered, timeout_s=30, what="the forgery in the dead-letter queue")
    assert status(api_url, coupon_id, 777).status_code == 404
    wait_until(lambda: forgeries_counted(api_url) >= forged_before + 1, timeout_s=10, what="the forgery counted")
    assert httpx.get(f"{api_url}/coupons/{coupon_id}", headers=ADMIN).json()["issuedQuantity"] == 0
