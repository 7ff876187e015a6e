"""What CacheReplicaAcks costs a reservation: the reservation script alone against the script and a WAIT for
one replica in the same pipeline, on a primary and a replica of this machine (plain TCP, no TLS).

    python -m bench.replica_acks [--seconds 5] [--clients 8]

Prints both rates, the ratio, and the mean time per reservation; writes nothing.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from bench.common import drive
from couponcore.adapters.reservations import RedisSeatLedger, RedisSeatStore
from couponcore.domain.reservation import PendingReservation, ReserveOutcome


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def redis_server(directory: Path, *options: str) -> Iterator[int]:
    port = free_port()
    server = shutil.which("redis-server")
    if server is None:
        raise SystemExit("redis-server is missing (scripts/services.sh installs it)")
    process = subprocess.Popen(  # noqa: S603 - our own arguments
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory), *options],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield port
    finally:
        process.kill()
        process.wait(timeout=10)


def reserving(store: RedisSeatStore, coupon_id: int) -> Callable[[int], None]:
    def call(user: int) -> None:
        if store.reserve(PendingReservation(coupon_id, user, f"t{user}", 1), None) is not ReserveOutcome.RESERVED:
            raise RuntimeError(f"user {user} not reserved")

    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch, redis_server(Path(scratch)) as primary:
        (Path(scratch) / "replica").mkdir()
        with redis_server(Path(scratch) / "replica", "--replicaof", "127.0.0.1", str(primary)) as replica:
            while redis.Redis(port=replica).info("replication")["master_link_status"] != "up":
                time.sleep(0.1)
            client = redis.Redis(port=primary, max_connections=args.clients * 2)
            rates = {}
            for coupon_id, acks in ((1, 0), (2, 1)):
                RedisSeatLedger(client).rebuild(coupon_id, [], epoch_ms=1)
                store = RedisSeatStore(client, replica_acks=acks, ack_timeout_ms=100)
                rates[acks] = drive(reserving(store, coupon_id), args.clients, args.seconds)
    alone, acked = rates[0].per_second, rates[1].per_second
    print(f"| reservation | reservations/s | ms each ({args.clients} clients) |\n|---|---:|---:|")
    for label, rate in (
        ("the script alone (CacheReplicaAcks=0)", alone),
        ("script + WAIT 1 (CacheReplicaAcks=1)", acked),
    ):
        print(f"| {label} | {rate:,.0f} | {args.clients * 1000 / rate:.2f} |")
    print(f"\nratio (with WAIT / alone): {acked / alone:.2f}")


if __name__ == "__main__":
    main()
