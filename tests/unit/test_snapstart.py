"""SnapStart's hooks, run the way Lambda runs them: before the snapshot, then after each restore."""

from __future__ import annotations

import runpy
from pathlib import Path
from typing import Any

import pytest
from snapshot_restore_py import get_after_restore, get_before_snapshot

from couponcore import bootstrap
from couponcore.entrypoints import snapstart

FUNCTIONS = Path(__file__).resolve().parents[2] / "functions"


def run(hooks: list[Any]) -> None:
    for hook, args, kwargs in hooks:
        hook(*args, **kwargs)


@pytest.mark.parametrize("function", ["issue_sync", "issue_async"])
def test_each_issue_function_registers_the_hooks_once(function: str) -> None:
    for _ in range(2):  # a module imported twice (tests) must not run the hooks twice
        runpy.run_path(str(FUNCTIONS / function / "app.py"))
    assert [hook for hook, _, _ in get_before_snapshot()].count(snapstart.warm_up) == 1
    assert [hook for hook, _, _ in get_after_restore()].count(snapstart.after_restore) == 1


def test_the_snapshot_holds_no_client_and_a_restored_copy_builds_its_own() -> None:
    snapstart.register()
    before = bootstrap.container()
    run(get_before_snapshot())
    assert bootstrap.container.cache_info().currsize == 0  # nothing built before the snapshot survives it
    during = bootstrap.container()
    run(get_after_restore())
    after = bootstrap.container()
    assert after is not during and after is not before
    assert "engine" not in after.__dict__ and "redis" not in after.__dict__  # connections come with the first request
