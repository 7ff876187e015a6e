"""The stack deployed with FrontDoor CloudFront: a request without CloudFront's x-origin-verify header went
around the edge's WAF rules, and every HTTP function refuses it; with the header it goes on."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from couponcore.adapters.aws import read_secret
from couponcore.config import Settings
from localdev.stack import BackgroundStack, LocalDeployment, StackOptions
from tests.support.network import free_port
from tests.support.tokens import as_user

FRONT_DOOR = {
    "FrontDoor": "CloudFront",
    "FrontDoorWebAclArn": "arn:aws:wafv2:us-east-1:000000000000:global/webacl/coupon-front-door-local/0a1b2c3d",
}


@pytest.fixture(scope="module")
def front_door_stack(migrated_database: Settings, sqs_endpoint: str) -> Iterator[BackgroundStack]:
    options = StackOptions(port=free_port(), workers=False, parameters=FRONT_DOOR)
    running = BackgroundStack(LocalDeployment(options=options)).start()
    yield running
    running.stop()


def test_a_request_around_cloudfront_is_refused_and_one_through_it_goes_on(front_door_stack: BackgroundStack) -> None:
    arn = front_door_stack.stack.template.functions["IssueAsyncFunction"].environment["ORIGIN_VERIFY_SECRET_ARN"]
    assert arn, "the template gives the HTTP functions the secret with FrontDoor CloudFront"
    through_cloudfront = {"x-origin-verify": str(read_secret(arn, 5.0)["value"])}
    with httpx.Client(base_url=front_door_stack.url, timeout=30) as client:
        for path in ("/health/live", "/health"):
            around = client.get(path)
            assert (around.status_code, around.json()["code"]) == (403, "FORBIDDEN")
            assert client.get(path, headers=through_cloudfront).status_code == 200
        body = {"couponId": 10**9, "userId": 5}
        around = client.post("/v2/issue-async", json=body, headers=as_user(5))
        assert around.json()["code"] == "FORBIDDEN"
        through = client.post("/v2/issue-async", json=body, headers={**as_user(5), **through_cloudfront})
        assert through.json()["code"] == "COUPON_NOT_EXIST"
        guessed = client.get("/health/live", headers={"x-origin-verify": "guess"})
        assert guessed.status_code == 403
