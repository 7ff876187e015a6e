"""Dependencies of the test's own, on their own ports and data directories, so a test may break them
(make them read-only, fill them up, kill them) without touching the shared servers."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis

from localdev.tls import ServerCertificate
from tests.support.network import free_port


@contextmanager
def private_redis(directory: Path, *options: str) -> Iterator[int]:
    """A redis-server on a free port with the given options, for one block; yields the port."""
    server = PrivateRedis(directory, *options).start()
    try:
        yield server.port
    finally:
        server.kill()


class PrivateMariaDB:
    """A mariadbd of the test's own (data directory, port): it may be killed and started again."""

    def __init__(self, directory: Path, *options: str) -> None:
        self.directory = directory
        self.options = options
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateMariaDB:
        data = self.directory / "data"
        if not data.exists():
            data.mkdir(parents=True)
            subprocess.run(
                [
                    "mariadb-install-db",
                    "--no-defaults",
                    "--user=root",
                    f"--datadir={data}",
                    "--auth-root-authentication-method=normal",
                ],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        self._process = subprocess.Popen(
            [
                "mariadbd",
                "--no-defaults",
                "--user=root",
                f"--datadir={data}",
                f"--port={self.port}",
                f"--socket={self.directory / 'mysqld.sock'}",
                "--bind-address=127.0.0.1",
                "--skip-log-bin",
                "--innodb-buffer-pool-size=64M",
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                import pymysql

                # Over its socket: a server that requires TLS on TCP still answers there.
                pymysql.connect(unix_socket=str(self.directory / "mysqld.sock"), user="root", connect_timeout=1).close()
                return self
            except Exception:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise RuntimeError("the private MariaDB did not start") from None
                time.sleep(0.2)

    def drop_anonymous_users(self) -> None:
        """As on RDS: no ''@'localhost' to shadow every user@'%' that logs in from this machine."""
        import pymysql

        connection = pymysql.connect(unix_socket=str(self.directory / "mysqld.sock"), user="root")
        with connection.cursor() as cursor:
            cursor.execute("SELECT host FROM mysql.user WHERE user = ''")
            for (host,) in cursor.fetchall():
                cursor.execute("DROP USER ''@%s", (host,))
        connection.close()

    def kill(self) -> None:
        """As a crash or an instance restart: no shutdown, connections cut."""
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=30)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            self._process.wait(timeout=60)
            self._process = None


class PrivateRedis:
    """A redis-server of the test's own that may be killed and started again, empty, on the same port."""

    def __init__(
        self,
        directory: Path,
        *options: str,
        ready_account: ClusterAccount | None = None,
        tls: ServerCertificate | None = None,
    ) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is not installed (scripts/services.sh installs it)")
        self.directory = directory
        self.options = options
        self.account = ready_account
        self.tls = tls
        self.port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateRedis:
        self.directory.mkdir(parents=True, exist_ok=True)
        listen = ["--port", str(self.port)]
        if self.tls:
            listen = ["--port", "0", "--tls-port", str(self.port), "--tls-auth-clients", "no"]
            listen += ["--tls-cert-file", str(self.tls.cert), "--tls-key-file", str(self.tls.key)]
            listen += ["--tls-ca-cert-file", str(self.tls.ca)]
        self._process = subprocess.Popen(
            [
                "redis-server",
                *listen,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
                *self.options,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        account = self.account
        client = self.admin(account)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                client.close()
                return self
            except redis.ConnectionError:
                if time.monotonic() > deadline or self._process.poll() is not None:
                    self.kill()
                    raise
                time.sleep(0.05)

    def admin(self, account: ClusterAccount | None = None) -> redis.Redis:
        """A client of the operator's (the default user, or the given one), over TLS when the server has it."""
        return redis.Redis(
            port=self.port,
            username=account.username if account else None,
            password=account.password if account else None,
            ssl=self.tls is not None,
            ssl_ca_certs=str(self.tls.ca) if self.tls else None,
        )

    def kill(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(timeout=10)
            self._process = None


@dataclass(frozen=True)
class ClusterAccount:
    username: str
    password: str


# What the functions log in as: every command but the dangerous ones (FLUSHALL, KEYS, CONFIG, DEBUG, ...),
# the ACL an ElastiCache user of this service gets too. The default user is off, as with ElastiCache RBAC.
SERVICE_ACCOUNT = ClusterAccount("coupon", "cluster-secret-1")
SERVICE_ACL = [SERVICE_ACCOUNT.username, "on", f">{SERVICE_ACCOUNT.password}", "~*", "&*", "+@all", "-@dangerous"]
ADMIN_ACCOUNT = ClusterAccount("operator", "cluster-admin-1")


@contextmanager
def private_redis_cluster(directory: Path, masters: int = 3) -> Iterator[list[int]]:
    """A Redis Cluster of ``masters`` shards (no replicas) with ACL users, as ElastiCache's cluster mode
    speaks it; yields the ports. Slots are spread evenly, so coupons land on different shards."""
    admin_acl = [ADMIN_ACCOUNT.username, "on", f">{ADMIN_ACCOUNT.password}", "~*", "&*", "+@all"]
    nodes = []
    try:
        for index in range(masters):
            node_dir = directory / f"node{index}"
            nodes.append(
                PrivateRedis(
                    node_dir,
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    str(node_dir / "nodes.conf"),
                    "--cluster-port",
                    str(free_port()),
                    # One word per argument: redis-server would read "default off" as one user name.
                    *("--user", "default", "off"),
                    *("--user", *admin_acl),
                    *("--user", *SERVICE_ACL),
                    ready_account=ADMIN_ACCOUNT,
                ).start()
            )
        ports = [node.port for node in nodes]
        subprocess.run(
            [
                "redis-cli",
                "--user",
                ADMIN_ACCOUNT.username,
                "--pass",
                ADMIN_ACCOUNT.password,
                "--no-auth-warning",
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in ports),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=60,
        )
        _wait_for_cluster_ok(ports[0])
        yield ports
    finally:
        for node in nodes:
            node.kill()


def _wait_for_cluster_ok(port: int) -> None:
    client = redis.Redis(
        port=port, username=ADMIN_ACCOUNT.username, password=ADMIN_ACCOUNT.password, decode_responses=True
    )
    deadline = time.monotonic() + 30
    while client.cluster("INFO").get("cluster_state") != "ok":
        if time.monotonic() > deadline:
            raise RuntimeError("the private Redis Cluster did not reach cluster_state:ok")
        time.sleep(0.1)
    client.close()
