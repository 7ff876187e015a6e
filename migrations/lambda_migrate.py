"""MigrateFunction's handler: applies the migrations in AWS (make deploy invokes it after each deploy)."""

from typing import Any

from runner import migrate  # type: ignore[import-not-found]  # the function's own root in Lambda


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, str]:
    return {"revision": migrate()}
