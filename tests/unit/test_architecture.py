"""The layer's shape, checked from its source: which package may import what, and no import cycles."""

from __future__ import annotations

import ast
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "layers" / "couponcore" / "couponcore"
# Libraries that talk to the world or run the Lambda plumbing: adapters and entry points only.
INFRASTRUCTURE = {"boto3", "botocore", "redis", "sqlalchemy", "pymysql", "aws_lambda_powertools"}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every module this file imports at its top level (imports inside functions would hide a cycle)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


MODULES = {module_name(path): imports_of(path) for path in PACKAGE.rglob("*.py")}


def modules_under(prefix: str) -> dict[str, set[str]]:
    return {name: imported for name, imported in MODULES.items() if name.startswith(prefix)}


@pytest.mark.parametrize("layer", ["couponcore.domain", "couponcore.services"])
def test_domain_and_services_know_no_driver(layer: str) -> None:
    for name, imported in modules_under(layer).items():
        assert not {i.split(".")[0] for i in imported} & INFRASTRUCTURE, name


def test_the_domain_depends_on_nothing_of_ours_outside_it() -> None:
    for name, imported in modules_under("couponcore.domain").items():
        ours = {i for i in imported if i.startswith("couponcore.")}
        assert all(i.startswith("couponcore.domain") for i in ours), (name, ours)


def test_services_use_ports_not_adapters_or_entry_points() -> None:
    for name, imported in modules_under("couponcore.services").items():
        outward = {
            i
            for i in imported
            if i.startswith(("couponcore.adapters", "couponcore.entrypoints", "couponcore.bootstrap"))
        }
        assert not outward, (name, outward)


def test_only_the_configuration_reads_the_environment() -> None:
    readers = {name for name, imported in MODULES.items() if {"os.environ", "os.getenv"} & imported or "os" in imported}
    assert readers == {"couponcore.config"}


def test_no_import_cycles() -> None:
    graph = {name: {i for i in imported if i in MODULES and i != name} for name, imported in MODULES.items()}
    try:
        tuple(TopologicalSorter(graph).static_order())
    except CycleError as cycle:
        pytest.fail(f"import cycle: {cycle.args[1]}")
