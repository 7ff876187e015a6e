"""Alembic environment: the target database, credentials and TLS come from the settings the functions read."""

from __future__ import annotations

from alembic import context

from couponcore.adapters.mysql import create_admin_engine
from couponcore.adapters.tables import metadata
from couponcore.config import Settings

# The runner hands its settings over; `alembic` on the command line reads the environment.
engine = create_admin_engine(context.config.attributes.get("settings") or Settings.from_env())
with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=metadata, compare_type=True)
    with context.begin_transaction():
        context.run_migrations()
engine.dispose()
