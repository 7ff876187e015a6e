"""The flash-sale scenario for locust (pip install locust; not a project dependency):

    locust -f loadtest/locustfile.py --host http://127.0.0.1:3000 -u 500 -r 500 --headless -t 30s

Set COUPON_ID to an existing ASYNC coupon (or SYNC with ROUTE=v1) and ROUTE to v1, v1-async or v2.
Each simulated user has its own id and asks once, then polls its status the way a client should.
python -m loadtest.flash_sale runs the same scenario without locust and audits the result.
"""

from __future__ import annotations

import itertools
import os

from locust import HttpUser, between, task  # type: ignore[import-not-found]

ROUTES = {"v1": "/v1/issue", "v1-async": "/v1/issue-async", "v2": "/v2/issue-async"}
_user_ids = itertools.count(1)


class FlashSaleUser(HttpUser):  # type: ignore[misc]
    wait_time = between(0.5, 1.5)

    def on_start(self) -> None:
        self.user_id = next(_user_ids)
        self.coupon_id = int(os.environ.get("COUPON_ID", "1"))
        self.asked = False

    @task
    def issue_then_poll(self) -> None:
        if not self.asked:
            path = ROUTES[os.environ.get("ROUTE", "v2")]
            with self.client.post(
                path, json={"couponId": self.coupon_id, "userId": self.user_id}, name=path, catch_response=True
            ) as response:
                if response.status_code in (200, 202, 409):
                    response.success()  # 409 (sold out, duplicate) is a correct answer in a flash sale
            self.asked = True
            return
        self.client.get(f"/coupons/{self.coupon_id}/issues/{self.user_id}", name="/coupons/[id]/issues/[user]")
