"""A flash sale on locust: `make loadtest` runs it headless once per scenario (loadtest/run.py), or by hand:

    locust -f loadtest/locustfile.py --headless --host http://127.0.0.1:3000 -u 64 -r 64 -t 20s --scenario v2

Scenarios: baseline (GET /health/live, no dependency: the stack's own ceiling), v1, v1-async, v2, mixed
(the three issue routes at once, each on its own coupon), and checkout (the order service redeeming issued
coupons while orders race, retry and cancel: loadtest/checkout.py; one locust process, no workers). In the
sale scenarios every simulated user fires without waiting, as a random user id from a large range with that
user's token from the local issuer. Hooks on locust's events keep what the load test is for:
- the coupons are created when the test starts (on the master, or the only process);
- a start gun: no user sends anything until every user of every worker is spawned;
- each answer is counted by route and contract code, and the successes per coupon and user are kept;
- when locust quits, the audit (loadtest/audit.py) checks the sale, and a failed audit fails the run.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter, deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import gevent
import gevent.event
import httpx
from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from couponcore.domain.issue_route import IssueRoute
from loadtest.audit import CouponTally, audit_api, audit_mysql, read
from loadtest.checkout import (
    MIN_AMOUNT,
    Answer,
    CheckoutLedger,
    answer_of,
    audit_checkout,
    audit_checkout_mysql,
    run_round,
    wait_and_resend,
)
from localdev.jwt_local import ADMIN_SCOPE, mint

ROUTES = {route.value: route.path for route in IssueRoute}
SCENARIOS = ("baseline", *ROUTES, "mixed", "checkout")
REDEMPTION = "/coupons/{couponId}/issues/{userId}/redemption"
BASELINE_PATH = "/health/live"
# 409 (sold out, or this user again) is a correct answer in a sale, and so is a 429 (a user past its fair
# share, or the route's throttle): its client waits as Retry-After says. Anything else is a failure.
SUCCESS = {200, 202}
REFUSED = {409}
CORRECT = SUCCESS | REFUSED | {429}
TOKEN_TTL_S = 6 * 3600
DEFAULT_RETRY_AFTER_S = 1.0


def retry_after_s(status: int, headers: Mapping[str, str]) -> float:
    """How long a client waits after this answer: Retry-After on a 429 or 503; API Gateway's own 429 carries
    none, so a second."""
    if status not in (429, 503):
        return 0.0
    try:
        return float(headers.get("Retry-After") or DEFAULT_RETRY_AFTER_S)
    except ValueError:
        return DEFAULT_RETRY_AFTER_S


@dataclass
class Sale:
    """This process's share of the run."""

    coupons: dict[str, int] = field(default_factory=dict)  # route -> coupon id
    identities: list[tuple[int, str]] = field(default_factory=list)  # (user id, token)
    gun: gevent.event.Event = field(default_factory=gevent.event.Event)
    outcomes: Counter[str] = field(default_factory=Counter)  # "POST /v2/issue-async 409 ..." -> count
    tallies: dict[int, CouponTally] = field(default_factory=dict)
    checkout: CheckoutLedger = field(default_factory=CheckoutLedger)


SALE = Sale()
logging.getLogger("httpx").setLevel(logging.WARNING)  # the audit's thousand status reads are not news


@events.init_command_line_parser.add_listener
def add_arguments(parser: Any) -> None:
    parser.add_argument("--scenario", choices=SCENARIOS, default="v2", help="what to load")
    parser.add_argument("--stock", type=int, default=1000, help="seats of each coupon")
    parser.add_argument("--user-range", type=int, default=10_000_000, help="user ids are drawn from 1..N")
    parser.add_argument("--identities", type=int, default=2000, help="distinct users (tokens) per process")
    parser.add_argument("--persist-timeout", type=float, default=120, help="seconds the audit waits for MySQL")
    parser.add_argument("--summary", default="", help="write the outcomes and the audit here (JSON)")
    parser.add_argument("--db-audit", choices=("auto", "yes", "no"), default="auto", help="count rows in MySQL too")
    # Set by the master (or the only process) when the test starts; the spawn message hands it to the workers.
    parser.add_argument("--coupons", default="", include_in_web_ui=False, help="route -> coupon id (JSON)")


@cache  # one token for the run: signing one a request would load the generator, not the service
def admin_headers() -> dict[str, str]:
    return {"Authorization": f"Bearer {mint({'sub': '1', 'scope': f'openid {ADMIN_SCOPE}'}, ttl_s=TOKEN_TTL_S)}"}


def create_coupon(client: httpx.Client, route: str, stock: int, *, min_amount: int = 0) -> int:
    now = datetime.now(UTC)
    body = {
        "title": f"Load test on {route}",
        "totalQuantity": stock,
        "discountAmount": 1000,
        "minAvailableAmount": min_amount,
        "dateIssueStart": (now - timedelta(minutes=1)).isoformat(),
        "dateIssueEnd": (now + timedelta(hours=2)).isoformat(),
        "issueMode": "SYNC" if route == IssueRoute.V1 else "ASYNC",
    }
    response = client.post("/coupons", json=body, headers=admin_headers())
    response.raise_for_status()
    return int(response.json()["id"])


def options_of(environment: Environment) -> Any:
    """The command line's options (locust always parses them before a test starts)."""
    assert environment.parsed_options is not None
    return environment.parsed_options


def routes_of(scenario: str) -> list[str]:
    return list(ROUTES) if scenario == "mixed" else [scenario] if scenario in ROUTES else []


def prepare_checkout(environment: Environment) -> None:
    """A coupon issued to `--stock` users through V1, for the order service to redeem."""
    options = options_of(environment)
    if isinstance(environment.runner, (MasterRunner, WorkerRunner)):
        raise SystemExit("the checkout scenario runs on one locust process: its rounds share one ledger")
    with httpx.Client(base_url=str(environment.host), timeout=30) as client:
        coupon = create_coupon(client, "v1", options.stock, min_amount=MIN_AMOUNT)
        users = random.sample(range(1, options.user_range + 1), options.stock)
        SALE.identities = [(user, mint({"sub": str(user)}, ttl_s=TOKEN_TTL_S)) for user in users]

        def issue(identity: tuple[int, str]) -> int:
            user, token = identity
            body = {"couponId": coupon, "userId": user}
            headers = {"Authorization": f"Bearer {token}"}
            return int(wait_and_resend(lambda: client.post("/v1/issue", json=body, headers=headers)).status_code)

        def warm(_: int) -> int:  # a coupon that does not exist: 404, nothing changes
            path = f"/coupons/{2**62}/issues/1/redemption"
            body = {"orderId": "warm-up", "orderAmount": 0}
            return int(wait_and_resend(lambda: client.put(path, json=body, headers=admin_headers())).status_code)

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = Counter(pool.map(issue, SALE.identities))
            # Containers for the rounds, before they start: a round that meets cold starts at the function's cap
            # would hear API Gateway's 500 (docs/deploying.md, Route throttles).
            list(pool.map(warm, range(8)))
    if statuses != Counter({200: len(users)}):
        raise SystemExit(f"the checkout's coupons were not all issued: {dict(statuses)}")
    SALE.checkout = CheckoutLedger(coupon=coupon, free=deque(users), using=dict.fromkeys(users))


@events.test_start.add_listener
def prepare(environment: Environment, **_: Any) -> None:
    options = options_of(environment)
    if options.scenario == "checkout":
        prepare_checkout(environment)
        return
    if not isinstance(environment.runner, WorkerRunner):
        try:
            with httpx.Client(base_url=str(environment.host), timeout=30) as client:
                coupons = {route: create_coupon(client, route, options.stock) for route in routes_of(options.scenario)}
        except httpx.HTTPError as error:
            # No coupon, no sale: stop at once and fail the run rather than load a route with nothing to sell.
            print(f"cannot create the sale's coupons on {environment.host}: {error}")
            environment.process_exit_code = 2
            assert environment.runner is not None
            gevent.spawn(environment.runner.quit)
            return
        options.coupons = json.dumps(coupons)  # the spawn message carries the options to every worker
    SALE.coupons = {route: int(c) for route, c in json.loads(options.coupons or "{}").items()}
    SALE.tallies = {coupon: CouponTally(options.stock) for coupon in SALE.coupons.values()}
    if not isinstance(environment.runner, MasterRunner):
        users = random.sample(range(1, options.user_range + 1), options.identities)
        SALE.identities = [(user, mint({"sub": str(user)}, ttl_s=TOKEN_TTL_S)) for user in users]


@events.spawning_complete.add_listener
def fire_start_gun(**_: Any) -> None:
    SALE.gun.set()


@events.request.add_listener
def count_answer(
    request_type: str, name: str, response: Any, context: dict[str, Any], exception: Any, **_: Any
) -> None:
    status = getattr(response, "status_code", 0) or 0
    code = ""
    if status >= 400:
        try:
            code = str(json.loads(response.text or "{}").get("code", ""))
        except ValueError:
            code = ""
    SALE.outcomes[f"{request_type} {name} {status} {code}".rstrip()] += 1
    tally = SALE.tallies.get(context.get("coupon", 0))
    if tally is not None:
        tally.asked.add(context["user"])
        if status in SUCCESS:
            tally.won.append(context["user"])
        elif status not in REFUSED:  # throttled, or failed: this user may not have had its chance
            tally.unanswered += 1


@events.report_to_master.add_listener
def send_share(data: dict[str, Any], **_: Any) -> None:
    data["sale"] = {
        "outcomes": dict(SALE.outcomes),
        "tallies": {coupon: tally.as_message() for coupon, tally in SALE.tallies.items()},
    }
    SALE.outcomes.clear()
    SALE.tallies = {coupon: CouponTally(tally.stock) for coupon, tally in SALE.tallies.items()}


@events.worker_report.add_listener
def gather_share(data: dict[str, Any], **_: Any) -> None:
    share = data.get("sale")
    if not share:
        return
    SALE.outcomes.update(share["outcomes"])
    for coupon, tally in share["tallies"].items():
        SALE.tallies[int(coupon)].merge(tally)


@events.quitting.add_listener
def audit_the_sale(environment: Environment, **_: Any) -> None:
    if isinstance(environment.runner, WorkerRunner):
        return
    options = options_of(environment)
    host = str(environment.host)
    problems: list[str] = []
    tokens = {user: token for user, token in SALE.identities}

    def user_headers(user: int) -> dict[str, str]:
        token = tokens.get(user) or mint({"sub": str(user)}, ttl_s=TOKEN_TTL_S)
        return {"Authorization": f"Bearer {token}"}

    local = "127.0.0.1" in host or "localhost" in host
    audit_db = options.db_audit == "yes" or (options.db_audit == "auto" and local)
    if SALE.checkout.coupon:
        with httpx.Client(base_url=host, timeout=30) as client:
            problems += audit_checkout(client, SALE.checkout, user_headers, read)
        if audit_db:
            problems += audit_checkout_mysql(SALE.checkout)
    if SALE.tallies:
        with httpx.Client(base_url=host, timeout=30) as client:
            problems += audit_api(
                client, SALE.tallies, admin_headers(), user_headers, persist_timeout_s=options.persist_timeout
            )
        if audit_db:
            problems += audit_mysql(SALE.tallies)
    audit = {
        "passed": not problems,
        "problems": problems,
        "coupons": {
            route: {"id": coupon, "stock": options.stock, "asked": len(SALE.tallies[coupon].asked),
                    "won": len(SALE.tallies[coupon].won)}
            for route, coupon in SALE.coupons.items()
        },
    }  # fmt: skip
    if SALE.checkout.coupon:
        ledger = SALE.checkout
        used = sum(1 for order in ledger.using.values() if order)
        audit["coupons"] = {"checkout": {"id": ledger.coupon, "holders": len(ledger.using), "rounds": ledger.rounds,
                                         "used": used}}  # fmt: skip
    if options.summary:
        summary = {"scenario": options.scenario, "outcomes": dict(SALE.outcomes), "audit": audit}
        Path(options.summary).write_text(json.dumps(summary, indent=2))
    if problems:
        print("AUDIT FAILED:\n  " + "\n  ".join(problems))
        environment.process_exit_code = 1
    elif SALE.tallies:
        print(f"audit passed: {json.dumps(audit['coupons'])}")


class SaleUser(FastHttpUser):
    """One of the users at the opening second: fires again at once, as a new random user each time."""

    wait_time = constant(0)

    def on_start(self) -> None:
        SALE.gun.wait()  # the start gun

    @task
    def ask(self) -> None:
        scenario = options_of(self.environment).scenario
        if scenario == "checkout":
            run_round(SALE.checkout, self.send_order, race)
            return
        if scenario == "baseline":
            self.client.get(BASELINE_PATH, name=f"GET {BASELINE_PATH}")
            return
        route = random.choice(routes_of(scenario))
        coupon = SALE.coupons.get(route)
        if coupon is None:  # the sale could not be set up; the run is stopping
            SALE.gun.wait()
            return
        user, token = random.choice(SALE.identities)
        with self.client.post(
            ROUTES[route],
            json={"couponId": coupon, "userId": user},
            headers={"Authorization": f"Bearer {token}"},
            name=ROUTES[route],
            context={"coupon": coupon, "user": user},
            catch_response=True,
        ) as response:
            if response.status_code in CORRECT:
                response.success()
            else:
                response.failure(f"{response.status_code} {response.text[:120]}")
        back_off = retry_after_s(response.status_code, response.headers)
        if back_off:
            gevent.sleep(back_off)  # as a well-behaved client does: the crowd thins instead of hammering

    def send_order(self, method: str, path: str, body: dict[str, Any] | None, params: dict[str, str] | None) -> Answer:
        """The order service's call, sent again after Retry-After on a 429 or 503 (the same order: idempotent)."""
        url = f"{path}?{urlencode(params)}" if params else path

        def once() -> Any:
            with self.client.request(
                method, url, json=body, headers=admin_headers(), name=REDEMPTION, catch_response=True
            ) as response:
                if response.status_code in CORRECT:
                    response.success()
                else:
                    response.failure(f"{response.status_code} {response.text[:120]}")
            return response

        return answer_of(wait_and_resend(once))


def race(calls: list[Any]) -> list[Answer]:
    """The calls at once (two orders racing for one coupon), their answers in order."""
    greenlets = [gevent.spawn(call) for call in calls]
    gevent.joinall(greenlets, raise_error=True)
    return [greenlet.value for greenlet in greenlets]
