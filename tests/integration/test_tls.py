"""TLS with verification on. Every MySQL path against a MariaDB of the test's own that refuses plain TCP and
presents a certificate from the test's own authority, as RDS and RDS Proxy do with theirs; Redis likewise."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pymysql
import pytest
import redis
from sqlalchemy import exc, text

from couponcore.adapters.mysql import create_admin_engine, create_mysql_engine, ping_mysql
from couponcore.adapters.redis_client import create_redis
from couponcore.bootstrap import build
from couponcore.config import Settings
from couponcore.domain.clock import epoch_ms_now, utc_now
from couponcore.domain.coupon import IssueMode, NewCoupon
from couponcore.domain.reservation import PendingReservation, ReservationMessage
from localdev.tls import ServerCertificate, issue_server_certificate
from migrations.runner import migrate
from tests.support.network import free_port
from tests.support.private_servers import PrivateMariaDB, PrivateRedis, private_redis

PASSWORD = "only-over-tls"


@dataclass(frozen=True)
class TlsDatabase:
    port: int
    certificate: ServerCertificate
    redis_port: int

    def settings(self, **overrides: str) -> Settings:
        env = {
            "DB_HOST": "127.0.0.1",
            "DB_PORT": str(self.port),
            "DB_USER": "coupon",
            "DB_PASSWORD": PASSWORD,
            "DB_NAME": "coupon_tls",
            "DB_SSL": "true",
            "DB_SSL_CA": str(self.certificate.ca),
            "DB_POOL_SIZE": "1",
            "DB_MAX_OVERFLOW": "0",
            "REDIS_PORT": str(self.redis_port),
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_TRACE_DISABLED": "true",
        }
        return Settings.from_env({**env, **overrides})


@pytest.fixture(scope="module")
def tls_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsDatabase]:
    directory: Path = tmp_path_factory.mktemp("tls-mariadb")
    certificate = issue_server_certificate(directory / "certs")
    server = PrivateMariaDB(
        directory,
        f"--ssl-ca={certificate.ca}",
        f"--ssl-cert={certificate.cert}",
        f"--ssl-key={certificate.key}",
        "--require-secure-transport=ON",
    ).start()
    admin = pymysql.connect(unix_socket=str(directory / "mysqld.sock"), user="root")
    with admin.cursor() as cursor:
        for host in ("%", "localhost"):  # 'localhost' too: the anonymous ''@'localhost' would match first
            cursor.execute(f"CREATE USER 'coupon'@'{host}' IDENTIFIED BY '{PASSWORD}' REQUIRE SSL")
            cursor.execute(f"GRANT ALL ON *.* TO 'coupon'@'{host}'")
    admin.close()
    try:
        with private_redis(directory / "redis") as redis_port:
            yield TlsDatabase(server.port, certificate, redis_port)
    finally:
        server.stop()


def open_coupon(mode: IssueMode) -> NewCoupon:
    now = utc_now()
    return NewCoupon(
        title=f"tls {mode.value}",
        total_quantity=2,
        discount_amount=1000,
        min_available_amount=0,
        date_issue_start=now - timedelta(minutes=1),
        date_issue_end=now + timedelta(hours=1),
        issue_mode=mode,
    )


def cipher_of(settings: Settings) -> str:
    with create_mysql_engine(settings).connect() as connection:
        row = connection.execute(text("SHOW SESSION STATUS LIKE 'Ssl_cipher'")).one()
    return str(row[1])


def test_migrations_and_functions_connect_over_verified_tls(tls_database: TlsDatabase) -> None:
    settings = tls_database.settings()
    revision = migrate(settings)
    assert revision
    with create_admin_engine(settings).connect() as connection:
        assert connection.execute(text("SELECT version_num FROM coupon_tls.alembic_version")).scalar() == revision
        assert connection.execute(text("SHOW SESSION STATUS LIKE 'Ssl_cipher'")).one()[1]
    assert cipher_of(settings)


def test_every_mysql_path_of_the_functions_works_over_tls(tls_database: TlsDatabase) -> None:
    settings = tls_database.settings()
    migrate(settings)
    container = build(settings)
    try:
        v1 = container.coupons.create(open_coupon(IssueMode.SYNC)).coupon.id
        container.sync_issue.issue(v1, 7)  # issue_sync
        assert container.coupons.issue_status(v1, 7).status == "ISSUED"  # coupons
        v2 = container.coupons.create(open_coupon(IssueMode.ASYNC)).coupon.id
        token = uuid.uuid4().hex
        container.adapters.seats.reserve(PendingReservation(v2, 8, token, epoch_ms_now()), 2)
        report = container.persist.persist([ReservationMessage(v2, 8, token, epoch_ms_now())])  # batch_persist
        assert (report.inserted, report.failed_coupons) == (1, {})
        assert container.reconcile.run().failed == []  # reconcile
        assert container.health.check().checks["mysql"]  # ops
    finally:
        container.close()


def test_a_server_certificate_from_another_authority_is_refused(tls_database: TlsDatabase, tmp_path: Path) -> None:
    stranger = issue_server_certificate(tmp_path, ca_name="someone else's CA")
    with pytest.raises(exc.OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
        ping_mysql(create_mysql_engine(tls_database.settings(DB_SSL_CA=str(stranger.ca))))
    # The system's authorities alone do not know the test's CA either: verification is on without DB_SSL_CA.
    with pytest.raises(exc.OperationalError, match="CERTIFICATE_VERIFY_FAILED"):
        ping_mysql(create_admin_engine(tls_database.settings(DB_SSL_CA="")))


def test_the_server_refuses_plain_connections(tls_database: TlsDatabase) -> None:
    """The fixture is what the other tests need it to be: without TLS nothing gets in."""
    with pytest.raises(exc.OperationalError):
        ping_mysql(create_admin_engine(tls_database.settings(DB_SSL="false", DB_SSL_CA="")))


@pytest.fixture(scope="module")
def tls_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, ServerCertificate]]:
    """A redis-server that also listens with TLS (as ElastiCache does, with the test's own CA)."""
    directory: Path = tmp_path_factory.mktemp("tls-redis")
    certificate = issue_server_certificate(directory / "certs")
    tls_port = free_port()
    server = PrivateRedis(
        directory / "data",
        *("--tls-port", str(tls_port), "--tls-auth-clients", "no"),
        *("--tls-cert-file", str(certificate.cert), "--tls-key-file", str(certificate.key)),
    ).start()
    yield tls_port, certificate
    server.kill()


def redis_settings(port: int, **overrides: str) -> Settings:
    return Settings.from_env({"REDIS_PORT": str(port), "REDIS_SSL": "true", "REDIS_DB": "0", **overrides})


def test_redis_over_tls_verifies_the_server(tls_redis: tuple[int, ServerCertificate], tmp_path: Path) -> None:
    port, certificate = tls_redis
    trusted = create_redis(redis_settings(port, REDIS_SSL_CA=str(certificate.ca)))
    assert trusted.ping()
    trusted.close()
    stranger = issue_server_certificate(tmp_path, ca_name="someone else's CA")
    for settings in (redis_settings(port, REDIS_SSL_CA=str(stranger.ca)), redis_settings(port)):
        client = create_redis(settings)
        with pytest.raises(redis.exceptions.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
            client.ping()
        client.close()
