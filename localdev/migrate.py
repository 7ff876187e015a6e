"""``python -m localdev.migrate``: the local account (queues, secrets, cache user) made or found, then the
database created if it is missing, every migration applied and the service's MySQL user given its grants,
as MigrateFunction does after a deploy. `deploy_database` is the same step for the tools (tests,
benchmarks, the simulation), each with its own database and queue."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text

from couponcore.adapters.aws import read_credentials
from couponcore.adapters.mysql import create_admin_engine
from couponcore.config import Settings
from localdev.account import LocalAccount, provision
from localdev.environment import use_local_defaults
from localdev.template import Template
from migrations.runner import migrate

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


def deploy_database(settings: Settings, queue_name: str, *, fresh: bool = False) -> tuple[LocalAccount, str]:
    """The account made or found, and the database migrated (dropped first with ``fresh``, for a tool that
    wants no rows of an earlier run); returns the account and the revision."""
    account = provision(Template(TEMPLATE), queue_name, settings)
    if fresh:
        server = create_admin_engine(settings, database="")
        with server.connect() as connection:
            connection.execute(text(f"DROP DATABASE IF EXISTS `{settings.db_name}`"))
        server.dispose()
    runtime_user = read_credentials(account.secret("DbRuntimeSecret"), settings.secrets_timeout_s)
    return account, migrate(settings, runtime_user)


def main() -> None:
    use_local_defaults()
    settings = Settings.from_env()
    _, revision = deploy_database(settings, os.environ.get("ISSUE_QUEUE_NAME", "coupon-issue"))
    print(f"migrations applied, database {settings.db_name} at revision {revision}")


if __name__ == "__main__":
    main()
