"""CacheReplicaAcks on a real primary and replica: a reservation counts only once the replica holds it, so
the replica, promoted in a failover, holds every seat that was answered 202."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from couponcore.adapters import redis_keys
from couponcore.adapters.reservations import RedisSeatLedger, RedisSeatStore
from couponcore.domain.errors import DependencyUnavailableError
from couponcore.domain.reservation import PendingReservation, ReserveOutcome
from tests.support.fault_proxy import FaultProxy
from tests.support.private_servers import PrivateRedis
from tests.support.sqs import wait_until


@pytest.fixture
def primary_and_replica(tmp_path: Path) -> Iterator[tuple[PrivateRedis, PrivateRedis, FaultProxy]]:
    primary = PrivateRedis(tmp_path / "primary").start()
    link = FaultProxy(primary.port).start()  # the replication link, to be cut
    replica = PrivateRedis(tmp_path / "replica", "--replicaof", "127.0.0.1", str(link.port)).start()
    try:
        wait_until(
            lambda: replica.admin().info("replication")["master_link_status"] == "up", what="the replica in sync"
        )
        yield primary, replica, link
    finally:
        link.stop()
        replica.kill()
        primary.kill()


def test_a_reservation_counts_only_once_a_replica_holds_it(
    primary_and_replica: tuple[PrivateRedis, PrivateRedis, FaultProxy],
) -> None:
    primary, replica, link = primary_and_replica
    RedisSeatLedger(primary.admin()).rebuild(1, [], epoch_ms=1)
    store = RedisSeatStore(primary.admin(), replica_acks=1, ack_timeout_ms=200)
    assert store.reserve(PendingReservation(1, 1, "a", 1), 10) is ReserveOutcome.RESERVED
    assert replica.admin().sismember(redis_keys.reserved_users(1), "1")  # acknowledged: the replica has it

    link.cut()  # the replica stops hearing its primary
    with pytest.raises(DependencyUnavailableError):
        store.reserve(PendingReservation(1, 2, "b", 1), 10)
    assert not store.holds_seat(1, 2)  # given back on the primary: nobody was told 202

    replica.admin().replicaof("NO", "ONE")  # the failover: the replica, behind, is promoted
    promoted = RedisSeatLedger(replica.admin())
    assert promoted.seat_holders(1) == {1} and not promoted.uncounted([1])  # every 202's seat, counted
