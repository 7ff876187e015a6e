"""The functions log in to MySQL as the service's own user, which the migrations create from the stack's
DbRuntimeSecret: its tables' rows and nothing more. No DDL, no deletes, no other table or database."""

from __future__ import annotations

from collections.abc import Iterator

import pymysql
import pytest

from couponcore.adapters.aws import read_credentials
from couponcore.adapters.mysql import tls_arguments
from couponcore.config import Settings
from localdev.account import LocalAccount
from migrations.runner import RUNTIME_GRANTS

ER_TABLEACCESS_DENIED = 1142
ER_DBACCESS_DENIED = 1044
ER_COLUMNACCESS_DENIED = 1143


@pytest.fixture
def as_the_service(migrated_database: Settings, local_account: LocalAccount) -> Iterator[pymysql.Connection]:
    user, password = read_credentials(local_account.secret("DbRuntimeSecret"), migrated_database.secrets_timeout_s)
    settings = migrated_database
    connection = pymysql.connect(
        host=settings.db_host,
        port=settings.db_port,
        user=user,
        password=password,
        database=settings.db_name,
        ssl=tls_arguments(settings)["ssl"],
    )
    yield connection
    connection.close()


def refused(connection: pymysql.Connection, statement: str) -> int:
    with pytest.raises(pymysql.err.OperationalError) as raised, connection.cursor() as cursor:
        cursor.execute(statement)
    return int(raised.value.args[0])


def test_the_service_user_runs_what_the_service_runs(as_the_service: pymysql.Connection) -> None:
    with as_the_service.cursor() as cursor:
        for table in RUNTIME_GRANTS:
            cursor.execute(f"SELECT COUNT(*) FROM {table}")
        cursor.execute("SET SESSION innodb_lock_wait_timeout = 3")  # what each connection's init does


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE stolen (id INT)",
        "DROP TABLE coupon_issues",
        "ALTER TABLE coupons ADD COLUMN owner INT",
        "TRUNCATE TABLE coupon_issues",
        "DELETE FROM coupon_issues",
        "SELECT * FROM alembic_version",
        "SELECT * FROM mysql.user",
    ],
)
def test_it_cannot_change_the_schema_or_reach_other_tables(as_the_service: pymysql.Connection, statement: str) -> None:
    assert refused(as_the_service, statement) == ER_TABLEACCESS_DENIED


def test_it_changes_only_an_issue_s_use_never_whose_or_when_it_is(as_the_service: pymysql.Connection) -> None:
    with as_the_service.cursor() as cursor:
        cursor.execute("UPDATE coupon_issues SET date_used = NULL, order_id = NULL, restored_order_id = NULL WHERE 0")
    for column in ("user_id", "coupon_id", "date_issued", "date_expire"):
        assert refused(as_the_service, f"UPDATE coupon_issues SET {column} = NULL WHERE 0") == ER_COLUMNACCESS_DENIED


def test_it_cannot_create_or_reach_another_database(as_the_service: pymysql.Connection) -> None:
    assert refused(as_the_service, "CREATE DATABASE elsewhere") == ER_DBACCESS_DENIED
    assert refused(as_the_service, "USE mysql") == ER_DBACCESS_DENIED
