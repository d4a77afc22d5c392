"""The catalog of gateway packages: every `gateways/<name>/package.py`, found by name, never listed by hand.

Adding a gateway adds a folder with a `package.py` whose `PACKAGE` is a `GatewayPackage` named like the
folder; this module finds it. The core (settings, wiring, schema) asks here, so no module outside
`gateways/` names a provider.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from functools import cache
from typing import Any

import gateways
from gateways.package import GatewayPackage

# What a fresh installation runs (PAYQL_GATEWAYS unset), so what the routing policy picks there.
DEVELOPMENT_DEFAULT = "sandbox"


class UnknownGatewayPackage(LookupError):
    pass


@cache
def available() -> tuple[str, ...]:
    """The names of every gateway package in `gateways/`, sorted."""
    return tuple(
        sorted(
            module.name
            for module in pkgutil.iter_modules(gateways.__path__)
            if module.ispkg and importlib.util.find_spec(f"gateways.{module.name}.package") is not None
        )
    )


@cache
def package(name: str) -> GatewayPackage[Any]:
    if name not in available():
        raise UnknownGatewayPackage(name)
    found = importlib.import_module(f"gateways.{name}.package").PACKAGE
    if not isinstance(found, GatewayPackage) or found.name != name:
        raise TypeError(f"gateways/{name}/package.py: PACKAGE must be a GatewayPackage named {name!r}")
    return found
