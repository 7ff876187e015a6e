"""Create the database if it is missing and apply every migration: ``python -m localdev.migrate``."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import create_engine, text

from couponcore.adapters.mysql import database_url
from couponcore.config import Settings

ROOT = Path(__file__).resolve().parent.parent


def migrate(settings: Settings | None = None) -> None:
    settings = settings or Settings.from_env()
    server = create_engine(database_url(settings, database=""))
    with server.connect() as connection:
        connection.execute(text(f"CREATE DATABASE IF NOT EXISTS `{settings.db_name}` CHARACTER SET utf8mb4"))
    server.dispose()
    command.upgrade(Config(str(ROOT / "alembic.ini")), "head")


if __name__ == "__main__":
    migrate()
    print("migrations applied")
