"""The core never names a gateway: outside `gateways/`, no module imports a provider's package or spells a
provider's name in code (identifiers, strings, descriptions); it asks the catalog, the registry and the
capability protocols instead. Docstrings and comments may mention providers as examples.

One exception, listed here: the deprecated `stripePublishableKey` alias, removed in the next release.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateways import catalog

ROOT = Path(__file__).resolve().parents[2]
CORE = ("payql", "resolvers", "schema", "webhooks", "jobs", "db", "domain", "notifications")
# (module, enclosing function): the only places outside gateways/ allowed to name a gateway.
ALLOWED = {("schema/queries.py", "stripe_publishable_key")}


def core_modules() -> list[Path]:
    return sorted(path for folder in CORE for path in (ROOT / folder).rglob("*.py") if "migrations" not in path.parts)


def docstrings(tree: ast.AST) -> set[int]:
    """The ids of every docstring constant: prose, not code."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def spellings(tree: ast.AST) -> Iterator[tuple[ast.AST, str]]:
    """Every name and string the code spells, with the node that spells it."""
    skip = docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((node, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            yield node, node.module or ""
            yield from ((node, alias.name) for alias in node.names)
        elif isinstance(node, ast.Name):
            yield node, node.id
        elif isinstance(node, ast.Attribute):
            yield node, node.attr
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node, node.name
        elif isinstance(node, ast.arg | ast.keyword) and node.arg:
            yield node, node.arg
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip:
            yield node, node.value


def enclosing_functions(tree: ast.AST) -> dict[int, str]:
    """Node id → the name of the outermost function or method around it."""
    owners: dict[int, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for inner in ast.walk(node):
                owners.setdefault(id(inner), node.name)
    # ast.walk is breadth first, so an outer function claims its nodes before an inner one.
    return owners


def violations(source: str, module: str) -> list[str]:
    tree = ast.parse(source)
    provider = re.compile("|".join(re.escape(name) for name in catalog.available()), re.IGNORECASE)
    owners = enclosing_functions(tree)
    found = []
    for node, spelled in spellings(tree):
        if provider.search(spelled) and (module, owners.get(id(node), "")) not in ALLOWED:
            found.append(f"{module}:{getattr(node, 'lineno', '?')}: {spelled[:80]!r}")
    return found


def test_no_core_module_names_a_gateway_or_imports_one() -> None:
    found = [
        problem
        for path in core_modules()
        for problem in violations(path.read_text("utf-8"), path.relative_to(ROOT).as_posix())
    ]
    assert found == []


@pytest.mark.parametrize(
    "code",
    [
        "from gateways.sandbox.adapter import SandboxGateway",
        "import gateways.stripe.adapter",
        "def f(gateway: object) -> bool:\n    return isinstance(gateway, SandboxGateway)",
        "NAME = 'paypal'",
        "def f(settings):\n    return settings.stripe_secret_key",
        "@field(description='Sandbox only')\ndef g(): ...",
    ],
)
def test_the_scan_sees_every_way_of_naming_one(code: str) -> None:
    assert violations(code, "resolvers/example.py")


def test_the_scan_leaves_prose_and_generic_code_alone() -> None:
    code = '"""Like the sandbox, and Stripe."""\ndef f(gateway: str) -> str:\n    """PayPal too."""\n    return gateway'
    assert violations(code, "resolvers/example.py") == []
