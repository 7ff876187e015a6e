"""SnapStart's hooks, run the way Lambda runs them: before the snapshot, then after each restore."""

from __future__ import annotations

import random
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
    before = bootstrap.services()
    run(get_before_snapshot())
    assert bootstrap.services.cache_info().currsize == 0  # nothing built before the snapshot survives it
    during = bootstrap.services()
    run(get_after_restore())
    after = bootstrap.services()
    assert after is not during and after is not before  # no client made before the restore is used after it


def test_each_restored_copy_draws_its_own_random_numbers() -> None:
    random.seed(1)  # the state every copy of one snapshot would share
    snapstart.after_restore()
    assert random.random() != random.Random(1).random()
