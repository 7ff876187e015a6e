"""``python -m localdev.migrate``: the local account (queues, secrets, cache user) made or found, then the
database created if it is missing, every migration applied and the service's MySQL user given its grants,
as MigrateFunction does after a deploy."""

from __future__ import annotations

import os
from pathlib import Path

from couponcore.adapters.aws import read_credentials
from couponcore.config import Settings
from localdev.account import provision
from localdev.environment import use_local_defaults
from localdev.template import Template
from migrations.runner import migrate

TEMPLATE = Path(__file__).resolve().parent.parent / "template.yaml"


def main() -> None:
    use_local_defaults()
    settings = Settings.from_env()
    account = provision(Template(TEMPLATE), os.environ.get("ISSUE_QUEUE_NAME", "coupon-issue"), settings)
    runtime_user = read_credentials(account.secret("DbRuntimeSecret"), settings.secrets_timeout_s)
    print(f"migrations applied, database {settings.db_name} at revision {migrate(settings, runtime_user)}")


if __name__ == "__main__":
    main()
