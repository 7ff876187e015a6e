"""Create the database if it is missing and apply every migration: ``python -m localdev.migrate``."""

from __future__ import annotations

from migrations.runner import migrate

if __name__ == "__main__":
    print(f"migrations applied, database at revision {migrate()}")
