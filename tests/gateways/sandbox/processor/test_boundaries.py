"""The line between the sandbox's simulated processor and its adapter: the processor imports nothing of the
adapter side nor PayQL's gateway vocabulary, and the adapter side reaches no private part of the processor."""

from __future__ import annotations

import ast
from pathlib import Path

import gateways.sandbox
import gateways.sandbox.processor

PROCESSOR = Path(gateways.sandbox.processor.__file__).parent
ADAPTER = Path(gateways.sandbox.__file__).parent
# What only the adapter side may import: its own modules and PayQL's shared results and errors.
ADAPTER_ONLY = ("gateways.types", "gateways.errors", "gateways.base", "gateways.package")


def imported(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found |= {node.module} | {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return found


def test_the_processor_never_imports_the_adapter_side() -> None:
    adapter_modules = {f"gateways.sandbox.{path.stem}" for path in ADAPTER.glob("*.py") if path.stem != "__init__"}
    for path in PROCESSOR.glob("*.py"):
        names = imported(path)
        assert not names & adapter_modules, f"{path.name} imports {names & adapter_modules}"
        assert not [name for name in names if name.startswith(ADAPTER_ONLY)], path.name
        assert "gateways.sandbox" not in names, f"{path.name} imports the adapter package"


def test_the_adapter_side_reaches_no_private_part_of_the_processor() -> None:
    for path in ADAPTER.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        private = [
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Attribute)
            and node.value.attr == "_processor"
        ]
        assert not private, f"{path.name} reaches {private}"
