"""Imports flow one way, `schema → resolvers → (db, gateways)`: the GraphQL surface never reaches into
the app's wiring (`payql`), nor into the webhook pipeline or the jobs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SCHEMA = Path(__file__).parent.parent.parent / "schema"
FORBIDDEN = ("payql", "webhooks", "jobs")


def imported_modules(source: Path) -> set[str]:
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            modules.add(node.module)
    return modules


@pytest.mark.parametrize("source", sorted(SCHEMA.rglob("*.py")), ids=lambda path: str(path.relative_to(SCHEMA)))
def test_a_schema_module_imports_no_wiring(source: Path) -> None:
    reached = {module for module in imported_modules(source) if module.split(".")[0] in FORBIDDEN}
    assert not reached, f"{source.name} imports {sorted(reached)}"
