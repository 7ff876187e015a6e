"""Create the database if it is missing and apply every migration; used locally and by MigrateFunction."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from couponcore.adapters.mysql import database_url
from couponcore.config import Settings

HERE = Path(__file__).resolve().parent


def migrate(settings: Settings | None = None) -> str:
    """Returns the revision the database is at afterwards."""
    settings = settings or Settings.from_env()
    server = create_engine(database_url(settings, database=""))
    with server.connect() as connection:
        connection.execute(text(f"CREATE DATABASE IF NOT EXISTS `{settings.db_name}` CHARACTER SET utf8mb4"))
    server.dispose()
    config = Config()
    config.set_main_option("script_location", str(HERE))
    command.upgrade(config, "head")
    return ",".join(ScriptDirectory.from_config(config).get_heads())
