"""MySQL queries per 1,000 V2 requests, with the two-level coupon cache and without it.

    python -m bench.cache_savings [--requests 1000]

"Without" replaces the catalog's levels with pass-throughs, so every request reads the coupon from
MySQL, as an uncached service would. Counts every statement sent to MySQL by the issue_async handler.
"""

from __future__ import annotations

import argparse
import os
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")

from sqlalchemy import event

from couponcore import bootstrap
from couponcore.bootstrap import services
from couponcore.config import Settings
from couponcore.domain.clock import utc_now
from couponcore.domain.coupon import IssueMode, NewCoupon
from localdev.environment import use_local_defaults
from localdev.events import http_api_event
from localdev.inprocess import invoke
from localdev.migrate import deploy_database

ROOT = Path(__file__).resolve().parent.parent


def run(requests: int, cached: bool) -> int:
    bootstrap.reset()
    now = utc_now()
    new = NewCoupon("cache", requests, 0, 0, now - timedelta(hours=1), now + timedelta(hours=1), IssueMode.ASYNC)
    with services().unit_of_work() as uow:
        coupon_id = uow.coupons.add(new, now)
        uow.commit()
    services().recount.count_new(coupon_id)  # its seats counted, as creating it through the API does
    catalog = services().adapters.catalog
    if not cached:
        catalog.get = catalog.refresh  # type: ignore[method-assign]
    statements = [0]

    def count(*_: Any) -> None:
        statements[0] += 1

    event.listen(services().adapters.engine, "before_cursor_execute", count)
    for user in range(1, requests + 1):
        body = {"couponId": coupon_id, "userId": user}
        invoke("issue_async", http_api_event("POST", "/v2/issue-async", body=body))
    event.remove(services().adapters.engine, "before_cursor_execute", count)
    return statements[0]


def main() -> None:
    use_local_defaults()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    account, _ = deploy_database(Settings.from_env(), f"coupon-cache-{uuid.uuid4().hex[:8]}")
    os.environ.update(ISSUE_QUEUE_URL=account.queue_url, SIGNING_SECRET_ARN=account.secret("MessageSigningSecret"))
    with_cache = run(args.requests, cached=True)
    without = run(args.requests, cached=False)
    print(f"MySQL statements per {args.requests} V2 requests: with the cache {with_cache}, without {without}")


if __name__ == "__main__":
    main()
