"""Create the database if it is missing, apply every migration, and give the service its own MySQL user;
used locally and by MigrateFunction.

The migrations run as an administrator (RDS's master user: DDL, CREATE USER). The functions log in as the
service's user, which may read and write the rows of the service's tables and nothing else: no DDL, no
other table, no other database. Its name and password come from the stack's DbRuntimeSecret.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

from couponcore.adapters.mysql import create_admin_engine
from couponcore.config import Settings

HERE = Path(__file__).resolve().parent
# The statements the service runs, table by table (adapters/repositories.py, adapters/unit_of_work.py).
RUNTIME_GRANTS = {
    "coupons": "SELECT, INSERT, UPDATE",
    # Redemption writes only the columns of use; an issue's coupon, user and dates never change.
    "coupon_issues": "SELECT, INSERT, UPDATE (date_used, order_id, restored_order_id, date_updated)",
    "coupon_rejections": "SELECT, INSERT",
}
# Two migrations at once (two deploys, a retry) would race on the schema: one waits for the other.
LOCK_NAME = "coupon-migrations"
LOCK_WAIT_S = 240


def migrate(settings: Settings | None = None, runtime_user: tuple[str, str] | None = None) -> str:
    """Returns the revision the database is at afterwards; ``runtime_user`` (name, password) is created
    or brought up to date with exactly RUNTIME_GRANTS."""
    settings = settings or Settings.from_env()
    server = create_admin_engine(settings, database="")
    with server.connect() as connection:
        if (
            connection.execute(text("SELECT GET_LOCK(:name, :wait)"), {"name": LOCK_NAME, "wait": LOCK_WAIT_S}).scalar()
            != 1
        ):
            raise TimeoutError(f"another migration held {LOCK_NAME!r} for {LOCK_WAIT_S} s")
        try:
            connection.execute(text(f"CREATE DATABASE IF NOT EXISTS `{settings.db_name}` CHARACTER SET utf8mb4"))
            revision = _upgrade(settings)
            if runtime_user:
                grant_runtime_user(connection, settings.db_name, *runtime_user)
        finally:
            connection.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": LOCK_NAME})
    server.dispose()
    return revision


def _upgrade(settings: Settings) -> str:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["settings"] = settings  # env.py migrates this database, not whatever the environment names
    command.upgrade(config, "head")
    return ",".join(ScriptDirectory.from_config(config).get_heads())


def grant_runtime_user(connection: Connection, database: str, user: str, password: str) -> None:
    """The service's user: TLS required, its password the secret's, RUNTIME_GRANTS and nothing more."""
    account = {"user": user, "password": password}
    connection.execute(text("CREATE USER IF NOT EXISTS :user@'%' IDENTIFIED BY :password REQUIRE SSL"), account)
    connection.execute(text("ALTER USER :user@'%' IDENTIFIED BY :password REQUIRE SSL"), account)
    connection.execute(text("REVOKE ALL PRIVILEGES, GRANT OPTION FROM :user@'%'"), account)
    for table, privileges in RUNTIME_GRANTS.items():
        connection.execute(text(f"GRANT {privileges} ON `{database}`.`{table}` TO :user@'%'"), account)
    connection.commit()
