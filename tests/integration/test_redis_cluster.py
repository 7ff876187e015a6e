"""Every Redis path on a Redis Cluster of three shards with ACL users, as ElastiCache Serverless and
cluster-mode groups run it: the Lua reservation, the V1-async lock, the two-level cache, idempotency,
batch_persist's confirmations and reconciliation's cross-coupon reads."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis
from redis.cluster import RedisCluster

from couponcore.adapters import redis_keys
from couponcore.bootstrap import DeployedServices, build
from couponcore.config import Settings
from couponcore.domain.clock import utc_now
from couponcore.domain.coupon import NewCoupon
from couponcore.domain.errors import ErrorCode
from couponcore.domain.issue_route import IssueRoute
from couponcore.domain.reservation import ReservationMessage
from localdev.sqs_local import sqs_client
from tests.support.concurrency import outcome, run_at_once
from tests.support.private_servers import SERVICE_ACCOUNT, private_redis_cluster
from tests.support.sqs import QueuePair

pytestmark = pytest.mark.usefixtures("clean_state")

STOCK = 5
USERS_PER_COUPON = 12


@pytest.fixture(scope="module")
def cluster_ports(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[int]]:
    directory: Path = tmp_path_factory.mktemp("redis-cluster")
    with private_redis_cluster(directory) as ports:
        yield ports


@pytest.fixture
def on_cluster(cluster_ports: list[int], issue_queue: QueuePair) -> Iterator[DeployedServices]:
    """The functions' container, configured as on ElastiCache: cluster protocol, an ACL user, database 0."""
    env = {
        **os.environ,
        "REDIS_CLUSTER": "true",
        "REDIS_HOST": "127.0.0.1",
        "REDIS_PORT": str(cluster_ports[0]),
        "REDIS_DB": "0",
        "REDIS_SSL": "false",  # the cluster protocol is under test here; TLS is, in test_tls.py
        "REDIS_SSL_CA": "",
        "REDIS_USERNAME": SERVICE_ACCOUNT.username,
        "REDIS_PASSWORD": SERVICE_ACCOUNT.password,
        "ISSUE_QUEUE_URL": issue_queue.url,
    }
    container = build(Settings.from_env(env))
    assert isinstance(container.adapters.redis, RedisCluster)
    yield container
    container.close()


def new_coupon(container: DeployedServices, *, ended: bool = False) -> int:
    now = utc_now()
    start, end = (
        (now - timedelta(hours=2), now - timedelta(hours=1))
        if ended
        else (now - timedelta(minutes=1), now + timedelta(hours=1))
    )
    coupon = NewCoupon(
        title="cluster", total_quantity=STOCK, discount_amount=100, min_available_amount=0,
        date_issue_start=start, date_issue_end=end,
    )  # fmt: skip
    return container.coupons.create(coupon).coupon.id


def shards_of(container: DeployedServices, coupon_ids: list[int]) -> set[str]:
    cluster = container.adapters.redis
    assert isinstance(cluster, RedisCluster)
    return {cluster.get_node_from_key(redis_keys.reserved_users(c)).name for c in coupon_ids}  # type: ignore[no-untyped-call]


def drain(queue: QueuePair, container: DeployedServices) -> list[ReservationMessage]:
    client = sqs_client(queue.endpoint)
    messages: list[ReservationMessage] = []
    while batch := client.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=10).get("Messages", []):
        messages += [container.adapters.seal.open(m["Body"]) for m in batch]
        client.delete_message_batch(
            QueueUrl=queue.url, Entries=[{"Id": m["MessageId"], "ReceiptHandle": m["ReceiptHandle"]} for m in batch]
        )
    return messages


def test_both_async_paths_sell_exactly_the_stock_on_every_shard(
    on_cluster: DeployedServices, issue_queue: QueuePair
) -> None:
    coupons = [new_coupon(on_cluster) for _ in range(6)]
    assert len(shards_of(on_cluster, coupons)) > 1, "the coupons should spread over the shards"
    service = on_cluster.async_issue
    calls = [(c, u) for c in coupons for u in range(1, USERS_PER_COUPON + 1)]

    def attempt(call: tuple[int, int]) -> str:
        coupon_id, user_id = call
        reserve = service.reserve_v2 if coupon_id % 2 else service.reserve_v1_async
        return outcome(lambda: reserve(coupon_id, user_id), "RESERVED")

    outcomes = run_at_once(calls, attempt, workers=16)
    for coupon_id in coupons:
        mine = [o for (c, _), o in zip(calls, outcomes, strict=True) if c == coupon_id]
        assert mine.count("RESERVED") == STOCK
        assert set(mine) == {"RESERVED", ErrorCode.INVALID_COUPON_ISSUE_QUANTITY.value}
        assert on_cluster.adapters.seats.seats_taken(coupon_id) == STOCK
        if coupon_id % 2:  # V2 sets the cached sold-out flag from the script's answer
            assert on_cluster.adapters.catalog.get(coupon_id).sold_out  # type: ignore[union-attr]

    # batch_persist confirms the seats (a pipeline per coupon), reconciliation reads every shard at once.
    report = on_cluster.persist.persist(drain(issue_queue, on_cluster))
    assert (report.inserted, report.failed_coupons) == (STOCK * len(coupons), {})
    ended = [new_coupon(on_cluster, ended=True) for _ in range(6)]
    assert len(shards_of(on_cluster, ended)) > 1
    reconciled = on_cluster.reconcile.run()
    assert (reconciled.failed, reconciled.resent, reconciled.missing) == ([], 0, 0)
    assert not on_cluster.adapters.ledger.with_pending(coupons)


def test_a_retried_request_is_answered_once(on_cluster: DeployedServices) -> None:
    coupon_id = new_coupon(on_cluster)
    key = uuid.uuid4().hex
    for _ in range(3):
        on_cluster.idempotent_issue.reserve(IssueRoute.V2, coupon_id, 42, key)
    assert on_cluster.adapters.seats.seats_taken(coupon_id) == 1
    assert on_cluster.coupons.issue_status(coupon_id, 42).status == "RESERVED"


def test_the_service_account_cannot_run_dangerous_commands(on_cluster: DeployedServices) -> None:
    """The ACL the functions use on ElastiCache (every command but @dangerous) is enough for every path above."""
    with pytest.raises(redis.exceptions.NoPermissionError):
        on_cluster.adapters.redis.flushall()
