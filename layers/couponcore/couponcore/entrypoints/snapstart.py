"""SnapStart for the issue functions: Lambda snapshots a container after its imports and restores copies of
it at the opening second of a sale. What runs before the snapshot loads code and holds no connection, no
credential and no secret; what runs after a restore makes sure nothing from before it is reused."""

from __future__ import annotations

import random

from snapshot_restore_py import get_before_snapshot, register_after_restore, register_before_snapshot

from couponcore import bootstrap


def warm_up() -> None:
    """Load what the first request would: botocore's SQS model (by building the client, which connects
    to nothing yet) and the Secrets Manager provider; then drop the clients themselves."""
    from aws_lambda_powertools.utilities.parameters import SecretsProvider  # noqa: F401 - loaded for the snapshot

    _ = bootstrap.services().adapters.queue
    bootstrap.reset()


def after_restore() -> None:
    """Every restored copy starts with its own clients (connections, credentials, the secret read again)
    and its own random state: copies of one snapshot would otherwise share retry jitter. Reservation
    tokens come from os.urandom (uuid4), which is unique per copy already."""
    bootstrap.reset()
    random.seed()


def register() -> None:
    """Called by each issue function's module (Lambda runs the hooks; elsewhere they never run)."""
    if any(hook is warm_up for hook, _, _ in get_before_snapshot()):  # type: ignore[misc]
        return
    register_before_snapshot(warm_up)
    register_after_restore(after_restore)
