"""Create the database if it is missing and apply every migration; used locally and by MigrateFunction."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text

from couponcore.adapters.mysql import create_admin_engine
from couponcore.config import Settings

HERE = Path(__file__).resolve().parent


def migrate(settings: Settings | None = None) -> str:
    """Returns the revision the database is at afterwards."""
    settings = settings or Settings.from_env()
    server = create_admin_engine(settings, database="")
    with server.connect() as connection:
        connection.execute(text(f"CREATE DATABASE IF NOT EXISTS `{settings.db_name}` CHARACTER SET utf8mb4"))
    server.dispose()
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["settings"] = settings  # env.py migrates this database, not whatever the environment names
    command.upgrade(config, "head")
    return ",".join(ScriptDirectory.from_config(config).get_heads())
