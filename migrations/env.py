"""Alembic environment: the target database comes from the same settings the functions read."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from couponcore.adapters.mysql import database_url
from couponcore.adapters.tables import metadata
from couponcore.config import Settings

url = database_url(Settings.from_env())
engine = create_engine(url)
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
