"""MigrateFunction's handler: applies the migrations in AWS (make deploy invokes it after each deploy), as
the admin user of DB_SECRET_ARN, and creates the service's user from DB_RUNTIME_SECRET_ARN."""

from typing import Any

from runner import migrate  # type: ignore[import-not-found]  # the function's own root in Lambda

from couponcore.adapters.aws import read_credentials
from couponcore.config import get_settings


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    settings = get_settings()
    runtime_user = (
        read_credentials(settings.db_runtime_secret_arn, settings.secrets_timeout_s)
        if settings.db_runtime_secret_arn
        else None
    )
    return {"revision": migrate(settings, runtime_user)}
