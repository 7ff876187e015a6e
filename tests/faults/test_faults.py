"""The fault suite (`make faults`): a flash sale on all three paths through the local stack in the
deployed configuration, while a dependency breaks for real, then an audit.

Its MariaDB and Redis are its own (private ports and data directories, TLS with the local CA, the service's
MySQL and cache users as deployed), so it may kill and restart them; fault proxies
(tests/support/fault_proxy.py: cut, delay, heal) sit between the functions and MySQL, Redis, SQS and
Secrets Manager. The functions read their secrets and call AWS with their roles' keys, as deployed; after
every case no AWS call was refused. Each case: traffic on V1,
V1-async and V2 for a few seconds, the fault in the middle, the fault healed, the backlog drained, then:
rows never above the total, nobody issued twice, `issued_quantity` equal to the rows, every 200 issued,
every 202 ending ISSUED or REJECTED on the status route, no 500 (except the request whose container was
killed), and how long after the heal each path answered normally again. Results go to
tests/faults/results/latest.md.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, text

from couponcore.adapters import redis_keys
from couponcore.adapters.aws import read_credentials
from couponcore.adapters.mysql import create_admin_engine
from couponcore.config import Settings
from couponcore.domain.issue_route import IssueRoute
from localdev.account import STACK, ensure_secret, provision
from localdev.environment import LOCAL_CA
from localdev.jwt_local import ADMIN_SCOPE, mint
from localdev.sqs_local import sqs_client
from localdev.stack import BackgroundStack, LocalDeployment, StackOptions
from localdev.template import Template
from localdev.tls import local_authority
from migrations.runner import migrate
from tests.support.fault_proxy import FaultProxy
from tests.support.network import free_port
from tests.support.private_servers import PrivateMariaDB, PrivateRedis
from tests.support.sqs import wait_until

pytestmark = pytest.mark.faults
ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"
STOCK = 500  # enough that the async coupons are still selling when the fault comes
SALE_S = 7.0
FAULT_AT_S = 1.5
HEAL_AFTER_S = 2.0
ADMIN = {"Authorization": f"Bearer {mint({'sub': '1', 'scope': f'openid {ADMIN_SCOPE}'}, ttl_s=3600)}"}


@dataclass
class World:
    stack: BackgroundStack
    mariadb: PrivateMariaDB
    redis: PrivateRedis
    mysql_proxy: FaultProxy
    redis_proxy: FaultProxy
    sqs_proxy: FaultProxy
    secrets_proxy: FaultProxy
    database: Engine
    replica: PrivateRedis | None = None
    replication_proxy: FaultProxy | None = None
    users: Iterator[int] = field(default_factory=lambda: itertools.count(1))


@contextlib.contextmanager
def built_world(directory: Path, sqs_endpoint: str, *, replica: bool = False) -> Iterator[World]:
    """MariaDB, Redis (with a replica behind a proxy of its own, if asked) and the SQS and Secrets Manager
    emulator, each behind a fault proxy; the schema; the stack deployed into the local account."""
    tls = local_authority(LOCAL_CA.parent)
    mariadb = PrivateMariaDB(
        directory / "mariadb", f"--ssl-ca={tls.ca}", f"--ssl-cert={tls.cert}", f"--ssl-key={tls.key}"
    ).start()
    mariadb.drop_anonymous_users()
    # The cache's ACL user is part of its configuration, as ElastiCache keeps it: a restart keeps it too.
    _, cache_user = ensure_secret(f"{STACK}/cache-user", lambda: {"username": STACK, "password": "unused"})
    acl = [cache_user["username"], "on", f">{cache_user['password']}", "~*", "&*", "+@all", "-@dangerous"]
    redis_server = PrivateRedis(directory / "redis", "--user", *acl, tls=tls).start()
    replication = FaultProxy(redis_server.port).start() if replica else None
    replica_server = None
    if replication is not None:
        follow = ["--replicaof", "127.0.0.1", str(replication.port), "--tls-replication", "yes"]
        replica_server = PrivateRedis(directory / "replica", "--user", *acl, *follow, tls=tls).start()
        wait_until(lambda: in_sync(replica_server), what="the replica in sync with its primary")
    sqs_port = int(sqs_endpoint.rsplit(":", 1)[1].strip("/"))
    proxies = [
        FaultProxy(mariadb.port).start(),
        FaultProxy(redis_server.port).start(),
        FaultProxy(sqs_port).start(),
        FaultProxy(sqs_port).start(),  # the same emulator, its Secrets Manager calls
    ]
    saved = dict(os.environ)
    os.environ.update(
        DB_HOST="127.0.0.1",
        DB_PORT=str(proxies[0].port),
        DB_NAME="coupon_faults",
        REDIS_PORT=str(proxies[1].port),
        REDIS_DB="0",
        AWS_ENDPOINT_URL=f"http://127.0.0.1:{proxies[2].port}",
        ISSUE_QUEUE_NAME=f"coupon-faults-{free_port()}",
    )
    settings = Settings.from_env()
    account = provision(Template(ROOT / "template.yaml"), os.environ["ISSUE_QUEUE_NAME"], settings, sqs_endpoint)
    migrate(settings, read_credentials(account.secret("DbRuntimeSecret"), settings.secrets_timeout_s))
    options = StackOptions(
        port=free_port(),
        workers=True,
        schedule_every_s=5.0,
        aws_upstreams={"secretsmanager": f"http://127.0.0.1:{proxies[3].port}"},
        # With a replica: a reservation is answered 202 only once the replica holds it (deploy parameter).
        parameters={"CacheReplicaAcks": "1"} if replica else {},
    )
    stack = BackgroundStack(LocalDeployment(options=options)).start()
    database = create_admin_engine(Settings.from_env({**os.environ, "DB_PORT": str(mariadb.port)}))
    world = World(
        stack=stack,
        mariadb=mariadb,
        redis=redis_server,
        mysql_proxy=proxies[0],
        redis_proxy=proxies[1],
        sqs_proxy=proxies[2],
        secrets_proxy=proxies[3],
        database=database,
        replica=replica_server,
        replication_proxy=replication,
    )
    try:
        yield world
    finally:
        stack.stop()
        for proxy in [*proxies, *([replication] if replication else [])]:
            proxy.stop()
        database.dispose()
        for server in (redis_server, replica_server):
            if server is not None:
                server.kill()
        mariadb.stop()
        os.environ.clear()
        os.environ.update(saved)


RESULT_ROWS: list[dict[str, object]] = []


@pytest.fixture(scope="module")
def results() -> Iterator[list[dict[str, object]]]:
    yield RESULT_ROWS
    write_results(RESULT_ROWS)


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, sqs_endpoint: str, results: list[dict[str, object]]
) -> Iterator[World]:
    with built_world(tmp_path_factory.mktemp("faults"), sqs_endpoint) as built:
        yield built


@pytest.fixture(scope="module")
def replicated_world(
    tmp_path_factory: pytest.TempPathFactory, sqs_endpoint: str, results: list[dict[str, object]]
) -> Iterator[World]:
    with built_world(tmp_path_factory.mktemp("faults-replicated"), sqs_endpoint, replica=True) as built:
        yield built


@dataclass(frozen=True)
class Answer:
    route: IssueRoute
    user: int
    status: int
    code: str
    at: float
    sent: float
    comment: str = ""

    @property
    def took_s(self) -> float:
        return self.at - self.sent


def create_coupon(world: World, mode: str) -> int:
    body = {
        "title": "Faulty sale",
        "totalQuantity": STOCK,
        "discountAmount": 1,
        "minAvailableAmount": 0,
        "dateIssueStart": "2020-01-01T00:00:00Z",
        "dateIssueEnd": "2099-01-01T00:00:00Z",
        "issueMode": mode,
    }
    for _ in range(3):  # as a client should: a 503 after the previous case's fault says retry
        response = httpx.post(f"{world.stack.url}/coupons", json=body, headers=ADMIN, timeout=30)
        if response.status_code != 503:
            break
        time.sleep(float(response.headers.get("Retry-After", "1")))
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def sale(world: World, coupons: dict[IssueRoute, int], fault: Fault) -> tuple[list[Answer], float]:
    """Traffic on every route for SALE_S seconds; the fault at FAULT_AT_S, healed fault.lasts_s later."""
    answers: list[Answer] = []
    lock = threading.Lock()
    started = time.monotonic()
    stop = started + SALE_S

    def client(route: IssueRoute) -> None:
        with httpx.Client(base_url=world.stack.url, timeout=30) as http:
            while time.monotonic() < stop:
                with lock:
                    user = next(world.users)
                token = {"Authorization": f"Bearer {mint({'sub': str(user)}, ttl_s=3600)}"}
                body = {"couponId": coupons[route], "userId": user}
                sent = time.monotonic() - started
                try:
                    response = http.post(route.path, json=body, headers=token)
                    answer = response.json()
                    code, comment = str(answer.get("code") or answer.get("message")), str(answer.get("comment"))
                    status = response.status_code
                except (httpx.HTTPError, ValueError) as error:
                    status, code, comment = 0, type(error).__name__, ""
                with lock:
                    answers.append(Answer(route, user, status, code, time.monotonic() - started, sent, comment))

    threads = [threading.Thread(target=client, args=(route,)) for route in IssueRoute for _ in range(2)]
    healed_at = with_the_fault(world, fault, threads, join_s=60) - started
    return answers, healed_at


def with_the_fault(world: World, fault: Fault, threads: list[threading.Thread], join_s: float) -> float:
    """Starts the traffic, breaks the dependency at FAULT_AT_S, heals it fault.lasts_s later, waits for the
    traffic to end. Returns when it was healed (time.monotonic())."""
    for thread in threads:
        thread.start()
    time.sleep(FAULT_AT_S)
    fault.breaks(world)
    time.sleep(fault.lasts_s)
    fault.heals(world)
    healed_at = time.monotonic()
    for thread in threads:
        thread.join(timeout=join_s)
    return healed_at


def drain(world: World, coupons: dict[IssueRoute, int], timeout_s: float = 150) -> None:
    """Until nothing async is pending in Redis and both async coupons' seats are counted (the stack's poller
    and its reconcile schedule run)."""
    client = world.redis.admin()
    deadline = time.monotonic() + timeout_s
    sold_by_redis = [coupons[route] for route in (IssueRoute.V1_ASYNC, IssueRoute.V2)]
    pending = [redis_keys.pending_reservations(coupon_id) for coupon_id in sold_by_redis]
    counted = [redis_keys.seats_counted(coupon_id) for coupon_id in sold_by_redis]
    while any(client.hlen(key) for key in pending) or not all(client.exists(key) for key in counted):
        assert time.monotonic() < deadline, {key: client.hlen(key) for key in pending}
        time.sleep(0.5)
    client.close()


def pauses(world: World) -> tuple[float, float]:
    """The stack's own coupon_seats_pause_seconds so far: (sum, count) over every recount."""
    text_format = httpx.get(f"{world.stack.url}/metrics", timeout=10).text
    samples = {s.name: s.value for f in text_string_to_metric_families(text_format) for s in f.samples}
    return samples.get("coupon_seats_pause_seconds_sum", 0.0), samples.get("coupon_seats_pause_seconds_count", 0.0)


def audit(world: World, coupons: dict[IssueRoute, int], answers: list[Answer], allowed_500: int) -> dict[str, object]:
    problems = []
    total_rows = doubles = lost = reserved = issued_202 = 0
    rejected_202: list[int] = []
    with world.database.connect() as connection:
        for route, coupon_id in coupons.items():
            issued, rows, users = (
                int(value)
                for value in connection.execute(
                    text(
                        "SELECT c.issued_quantity, COUNT(i.id), COUNT(DISTINCT i.user_id) FROM coupons c "
                        "LEFT JOIN coupon_issues i ON i.coupon_id = c.id WHERE c.id = :c GROUP BY c.id"
                    ),
                    {"c": coupon_id},
                ).one()
            )
            total_rows += rows
            doubles += rows - users
            if not (issued == rows == users and rows <= STOCK):
                problems.append(f"{route}: issued_quantity={issued} rows={rows} distinct={users} stock={STOCK}")
            rows_of_users = connection.execute(
                text("SELECT user_id FROM coupon_issues WHERE coupon_id=:c"), {"c": coupon_id}
            ).all()
            held = {int(row[0]) for row in rows_of_users}
            winners = {a.user for a in answers if a.route == route and a.status in (200, 202)}
            if route is not IssueRoute.V1:
                reserved += len(winners)
                issued_202 += len(winners & held)
            if route is IssueRoute.V1 and not winners <= held:
                lost += len(winners - held)
                problems.append(f"v1: {len(winners - held)} answered 200 without a row")
            if route is not IssueRoute.V1:
                unsettled = []
                for user in winners - held:
                    status = (
                        httpx.get(
                            f"{world.stack.url}/coupons/{coupon_id}/issues/{user}",
                            headers={"Authorization": f"Bearer {mint({'sub': str(user)}, ttl_s=600)}"},
                            timeout=30,
                        )
                        .json()
                        .get("status")
                    )
                    if status == "REJECTED":
                        rejected_202.append(user)
                    else:
                        unsettled.append((user, status))
                lost += len(unsettled)
                if unsettled:
                    problems.append(f"{route}: 202s neither ISSUED nor REJECTED: {unsettled[:5]} ({len(unsettled)})")
    if rejected_202:
        # A 202 is a promise: its seat was counted. REJECTED means Redis sold a seat it had lost count of.
        problems.append(f"{len(rejected_202)} answered 202 ended REJECTED: {rejected_202[:5]}")
    errors = sum(1 for a in answers if a.status == 500 or a.status == 0)
    if errors > allowed_500:
        problems.append(f"{errors} answers were 500 or no answer (allowed {allowed_500})")
    return {
        "requests": len(answers),
        "accepted": sum(1 for a in answers if a.status in (200, 202)),
        "503": sum(1 for a in answers if a.status == 503),
        "rows": total_rows,
        "reserved": reserved,
        "reserved_issued": issued_202,
        "reserved_rejected": len(rejected_202),
        "doubles": doubles,
        "lost": lost,
        "5xx_other": errors,
        "problems": problems,
    }


def write_results(results: list[dict[str, object]]) -> None:
    """The run's table (tests/faults/results/latest.md) and its data (latest.json)."""
    if not results:
        return
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        f"Fault suite run {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}: {SALE_S:.0f} s of traffic on V1, "
        f"V1-async and V2 (2 clients each, {STOCK} seats each), the fault at {FAULT_AT_S} s, healed "
        f"{HEAL_AFTER_S} s later"
        + "".join(
            f"; {name}: {f.lasts_s} s"
            for name, f in {**FAULTS, LAGGING_FAILOVER_NAME: LAGGING_FAILOVER}.items()
            if f.lasts_s != HEAL_AFTER_S
        )
        + ".",
        "",
        "| fault | requests | 200/202 | rows | doubles | lost | 503 | 500 or no answer | 202 | 202 ISSUED "
        "| 202 REJECTED | paused (s) | slowest answer (s) | recovery after heal (s) | audit |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in results:
        problems = row["problems"]
        audit_result = (
            "FAILED: " + "; ".join(str(p) for p in problems) if isinstance(problems, list) and problems else "passed"
        )
        lines.append(
            f"| {row['fault']} | {row['requests']} | {row['accepted']} | {row['rows']} | {row['doubles']} | "
            f"{row['lost']} | {row['503']} | {row['5xx_other']} | {row['reserved']} | {row['reserved_issued']} | "
            f"{row['reserved_rejected']} | {row['paused_s']} | {row['slowest_s']} | "
            f"{row['recovery_s']} | {audit_result} |"
        )
    if CHECKOUT_ROWS:
        lines += [
            "",
            f"Checkout under faults: {CHECKOUT_HOLDERS} holders of a V1 coupon, four order services redeeming with a "
            "new order and cancelling it in turn, each request retried as it is (the same order) after a 503 or a "
            "cut connection until it has a final answer; then MySQL's rows against what the order services were "
            "told.",
            "",
            "| fault | redeemed | restored | sent again after a 503 | after no answer | audit |",
            "|---|---|---|---|---|---|",
        ]
        for checkout in CHECKOUT_ROWS:
            verdict = "FAILED: " + "; ".join(checkout.problems) if checkout.problems else "passed"
            redeemed, restored = (
                checkout.answers.get("PUT 200 REDEEMED", 0),
                checkout.answers.get("DELETE 200 RESTORED", 0),
            )
            again, unanswered = checkout.retried.get("503", 0), checkout.retried.get("no answer", 0)
            lines.append(f"| {checkout.fault} | {redeemed} | {restored} | {again} | {unanswered} | {verdict} |")
    (RESULTS / "latest.md").write_text("\n".join(lines) + "\n")


def recovery_s(answers: list[Answer], healed_at: float) -> float:
    """From the heal to the last 503 or failure: how long the service took to answer normally again."""
    late = [a.at for a in answers if a.status in (0, 500, 503) and a.at >= healed_at]
    return round(max(late) - healed_at, 2) if late else 0.0


def kill_an_issue_async_container(world: World) -> None:
    busy = [c for c in world.stack.stack.runtime.containers("IssueAsyncFunction") if c.process and c.current]
    victim = random.choice(busy or world.stack.stack.runtime.containers("IssueAsyncFunction"))
    assert victim.process is not None
    os.kill(victim.process.pid, signal.SIGKILL)


def start_mariadb_again(world: World) -> None:
    world.mariadb.start()  # the same data directory and port: a restart


def start_redis_again_empty(world: World) -> None:
    world.redis.start()  # the same port, nothing in it: a restart without persistence, or a failover


def flush_redis(world: World) -> None:
    world.redis.admin().flushall()  # everything gone at once, the server still up: an operator's slip


def make_redis_read_only(world: World) -> None:
    world.redis.admin().replicaof("127.0.0.1", "1")  # what clients see after a failover


def make_redis_writable(world: World) -> None:
    world.redis.admin().replicaof("NO", "ONE")


def poison_the_queue(world: World) -> None:
    """Malformed records and forged ones (well-formed, unsigned): refused, nobody issued, the sale goes on."""
    sqs = sqs_client(f"http://127.0.0.1:{world.sqs_proxy.port}")
    assert world.stack.stack.account is not None
    forged = '{"couponId": 1, "userId": 2, "token": "forged", "reservedAt": 1}'
    for body in (
        "{not json",
        '{"couponId": 1}',
        '{"couponId": 1, "userId": 2, "token": "t", "reservedAt": 1e30}',
        forged,
    ):
        sqs.send_message(QueueUrl=world.stack.stack.account.queue_url, MessageBody=body)


def slow_secrets_at_cold_starts(world: World) -> None:
    """Every warm container retired, Secrets Manager answering 3 s a packet: each new container's first
    request cannot read its credentials in time."""
    world.secrets_proxy.slow(3.0)
    world.stack.recycle()


def kill_batch_persist(world: World) -> None:
    for container in world.stack.stack.runtime.containers("BatchPersistFunction"):
        if container.process is not None:
            os.kill(container.process.pid, signal.SIGKILL)


def in_sync(replica: PrivateRedis) -> bool:
    return bool(replica.admin().info("replication")["master_link_status"] == "up")


def fail_over_to_a_lagging_replica(world: World) -> None:
    assert world.replica is not None and world.replication_proxy is not None
    world.replication_proxy.cut()  # the replica stops hearing its primary: it lags from here on
    time.sleep(1.0)  # the sale goes on against the primary, whose writes the replica never gets
    world.redis.admin().replicaof("127.0.0.1", "1")  # the failover begins: the primary refuses writes
    time.sleep(0.5)
    world.replica.admin().replicaof("NO", "ONE")  # the replica, behind, is promoted
    world.redis_proxy.fail_over(world.replica.port)


def rejoin_as_replica(world: World) -> None:
    """The old primary comes back as the new one's replica (ElastiCache replaces the failed node so)."""
    assert world.replica is not None
    old = world.redis.admin()
    old.config_set("tls-replication", "yes")
    old.replicaof("127.0.0.1", str(world.replica.port))


@dataclass(frozen=True)
class Fault:
    breaks: Callable[[World], None]
    heals: Callable[[World], None] = lambda world: None
    allowed_500: int = 0
    lasts_s: float = HEAL_AFTER_S


FAULTS = {
    "MySQL restarted mid-sale": Fault(lambda w: w.mariadb.kill(), start_mariadb_again),
    "MySQL connections cut": Fault(lambda w: w.mysql_proxy.cut(), lambda w: w.mysql_proxy.heal()),
    "Redis restarted empty mid-sale": Fault(lambda w: w.redis.kill(), start_redis_again_empty),
    "Redis flushed mid-sale": Fault(flush_redis),
    "SQS unreachable": Fault(lambda w: w.sqs_proxy.cut(), lambda w: w.sqs_proxy.heal()),
    # Longer than one send's two timed-out attempts, so that sends fail while it lasts rather than
    # straddling the heal and succeeding late.
    "SQS slow (1.5 s a packet)": Fault(lambda w: w.sqs_proxy.slow(1.5), lambda w: w.sqs_proxy.heal(), lasts_s=4.0),
    "Redis read-only (a failover)": Fault(make_redis_read_only, make_redis_writable),
    "an issue_async container killed mid-request": Fault(kill_an_issue_async_container, allowed_500=1),
    "batch_persist's containers killed": Fault(kill_batch_persist),
    "poison and forged records on the queue": Fault(poison_the_queue),
    # Long enough for the new containers to start (two inits at a time here) and meet it.
    "Secrets Manager slow at cold starts": Fault(
        slow_secrets_at_cold_starts, lambda w: w.secrets_proxy.heal(), lasts_s=5.0
    ),
}


LAGGING_FAILOVER = Fault(fail_over_to_a_lagging_replica, rejoin_as_replica, lasts_s=1.0)
LAGGING_FAILOVER_NAME = "Redis read-only, then a lagging replica promoted (CacheReplicaAcks=1)"


@pytest.mark.parametrize("name", list(FAULTS))
def test_a_sale_survives(world: World, name: str) -> None:
    run_the_sale(world, name, FAULTS[name])


def run_the_sale(world: World, name: str, fault: Fault) -> None:
    coupons = {
        IssueRoute.V1: create_coupon(world, "SYNC"),
        IssueRoute.V1_ASYNC: create_coupon(world, "ASYNC"),
        IssueRoute.V2: create_coupon(world, "ASYNC"),
    }
    paused_before = pauses(world)
    answers, healed_at = sale(world, coupons, fault)
    drain(world, coupons)
    result = audit(world, coupons, answers, fault.allowed_500)
    paused_sum, recounts = (after - before for after, before in zip(pauses(world), paused_before, strict=True))
    # From a loss first seen to the seats recounted, per coupon (the service's own measure).
    result["paused_s"] = round(paused_sum / recounts, 2) if recounts else 0.0
    result["slowest_s"] = round(max(a.took_s for a in answers), 2)
    result["recovery_s"] = recovery_s(answers, healed_at)
    result["codes"] = dict(Counter(f"{a.status} {a.code}" for a in answers))
    result["why_503"] = dict(Counter(a.comment for a in answers if a.status == 503))
    assert world.stack.stack.aws is not None
    result["refused_aws_calls"] = [c for c in world.stack.stack.aws.record() if c["result"] != "Allowed"]
    RESULT_ROWS.append({"fault": name, **result})
    assert not result["problems"], result
    assert not result["refused_aws_calls"], result


# --- checkout under faults -------------------------------------------------------------------------------
CHECKOUT_HOLDERS = 40
CHECKOUT_FAULTS = {
    name: FAULTS[name]
    for name in ("MySQL connections cut", "MySQL restarted mid-sale", "Redis restarted empty mid-sale")
}


@dataclass(frozen=True)
class CheckoutResult:
    fault: str
    answers: dict[str, int]
    retried: dict[str, int]  # sent again after this status (or "no answer")
    problems: list[str]


CHECKOUT_ROWS: list[CheckoutResult] = []


def final_answer(
    http: httpx.Client,
    method: str,
    path: str,
    headers: dict[str, str] = ADMIN,
    retried: Counter[str] | None = None,
    **request: object,
) -> httpx.Response:
    """As the order service does: a 503, a 500 or no answer is sent again, the same order (idempotent), until
    the service says something final. Returns that answer; counts in `retried` what was sent again."""
    retried = Counter() if retried is None else retried
    for _ in range(60):
        try:
            response = http.request(method, path, headers=headers, **request)  # type: ignore[arg-type]
        except httpx.HTTPError:
            retried["no answer"] += 1
            time.sleep(0.5)
            continue
        if response.status_code not in (429, 500, 503):
            return response
        retried[str(response.status_code)] += 1
        time.sleep(float(response.headers.get("Retry-After", "0.5")))
    raise AssertionError(f"{method} {path}: no final answer in 60 tries")


def checkout_traffic(
    world: World, coupon_id: int, holders: list[int], fault: Fault
) -> tuple[dict[int, str | None], Counter[str], Counter[str]]:
    """Four order services, each with holders of its own: redeem with a new order, cancel it the next time,
    while the fault comes and goes. Returns which order each holder's coupon is used by, the final answers,
    and what was sent again (by status, or "no answer")."""
    using: dict[int, str | None] = dict.fromkeys(holders)
    answers: Counter[str] = Counter()
    retried_by_all: Counter[str] = Counter()
    lock = threading.Lock()
    stop = time.monotonic() + SALE_S

    def service(mine: list[int]) -> None:
        retried: Counter[str] = Counter()
        with httpx.Client(base_url=world.stack.url, timeout=30) as http:
            for round_number in itertools.count():
                if time.monotonic() >= stop:
                    with lock:
                        retried_by_all.update(retried)
                    return
                user = mine[round_number % len(mine)]
                path = f"/coupons/{coupon_id}/issues/{user}/redemption"
                holder = using[user]
                if holder is None:
                    order = f"order-{user}-{round_number}"
                    body = {"orderId": order, "orderAmount": 100}
                    answer = final_answer(http, "PUT", path, retried=retried, json=body)
                    if answer.status_code == 200:
                        using[user] = order
                else:
                    answer = final_answer(http, "DELETE", path, retried=retried, params={"orderId": holder})
                    if answer.status_code == 200:
                        using[user] = None
                with lock:
                    answers[f"{answer.request.method} {answer.status_code} {answer.json().get('code')}"] += 1

    threads = [threading.Thread(target=service, args=(holders[n::4],)) for n in range(4)]
    with_the_fault(world, fault, threads, join_s=120)
    return using, answers, retried_by_all


@pytest.mark.parametrize("name", list(CHECKOUT_FAULTS))
def test_checkout_survives(world: World, name: str) -> None:
    """Redemptions and cancels while MySQL or Redis breaks: every request the order service retries after a
    503 (or a cut connection) ends in the answer it would have had, and MySQL holds exactly what the order
    services were told: no coupon used by two orders, no use lost, no issue count moved."""
    coupon_id = create_coupon(world, "SYNC")
    holders = [next(world.users) for _ in range(CHECKOUT_HOLDERS)]
    with httpx.Client(base_url=world.stack.url, timeout=30) as http:
        for user in holders:
            token = {"Authorization": f"Bearer {mint({'sub': str(user)}, ttl_s=600)}"}
            issued = final_answer(http, "POST", "/v1/issue", token, json={"couponId": coupon_id, "userId": user})
            assert issued.status_code == 200, issued.text
    using, answers, retried = checkout_traffic(world, coupon_id, holders, CHECKOUT_FAULTS[name])
    with world.database.connect() as connection:
        rows = connection.execute(
            text("SELECT user_id, order_id, date_used FROM coupon_issues WHERE coupon_id = :c"), {"c": coupon_id}
        ).all()
        counted = connection.execute(
            text("SELECT issued_quantity FROM coupons WHERE id = :c"), {"c": coupon_id}
        ).scalar()
    in_mysql = {int(row[0]): (row[1] if row[2] else None) for row in rows}
    problems = [
        f"user {u}: MySQL says {in_mysql.get(u)}, the order service {o}"
        for u, o in using.items()
        if in_mysql.get(u) != o
    ]
    if counted != len(rows) or len(rows) != CHECKOUT_HOLDERS:
        problems.append(f"issued_quantity={counted}, rows={len(rows)}, holders={CHECKOUT_HOLDERS}")
    unexpected = {
        answer: n for answer, n in answers.items() if answer not in ("PUT 200 REDEEMED", "DELETE 200 RESTORED")
    }
    if unexpected:
        problems.append(f"answers other than REDEEMED and RESTORED: {unexpected}")
    if retried["500"]:
        problems.append(f"{retried['500']} answers were 500")
    CHECKOUT_ROWS.append(CheckoutResult(name, dict(answers), dict(retried), problems))
    assert not problems, problems


# Last: its stack replaces the process's endpoints (built_world), so the cases above run before it exists.
def test_a_sale_survives_a_failover_to_a_lagging_replica(replicated_world: World) -> None:
    """The primary's replication stalls, then it turns read-only (a failover begins), then its replica, which
    had not caught up, is promoted and the service's connections move to it. Answered 202 only once the
    replica held it (CacheReplicaAcks=1), no reservation is lost with the writes the replica never had."""
    run_the_sale(replicated_world, LAGGING_FAILOVER_NAME, LAGGING_FAILOVER)
