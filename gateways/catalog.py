"""The catalog of gateway packages: every `gateways/<name>/package.py`, found by name, never listed by hand.

Adding a gateway adds a folder with a `package.py` whose `PACKAGE` is a `GatewayPackage` named like the
folder; this module finds it. The core (settings, wiring, schema) asks here, so no module outside
`gateways/` names a provider.

A name in PAYQL_GATEWAYS is a *gateway*: a package's own name ("sandbox"), or an *instance* of a package
that declares `allows_instances`, named `<package>_<suffix>` ("sandbox_backup"): the package's name, an
underscore, then lower-case letters, digits and single underscores, at most `MAX_GATEWAY_NAME` characters
in all (the database stores a gateway's name in 32). A package's own name always wins
(if "foo" and "foo_bar" are both packages, "foo_bar" is the package), else the longest package name
that prefixes it. Each instance runs on its own: its settings come from `PAYQL_<INSTANCE>_*`
(`PAYQL_SANDBOX_BACKUP_STATE_PATH`), and it has its own adapter named after it, its own routes
(`/<instance>`), webhooks (`/webhooks/<instance>`), circuit and place in PAYQL_ROUTING.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import re
from functools import cache
from typing import Any

import gateways
from gateways.package import GatewayPackage, GatewaySettings

# What a fresh installation runs (PAYQL_GATEWAYS unset), so what the routing policy picks there.
DEVELOPMENT_DEFAULT = "sandbox"
MAX_GATEWAY_NAME = 32
_INSTANCE_SUFFIX = re.compile(r"[a-z0-9]+(?:_[a-z0-9]+)*")


class UnknownGatewayPackage(LookupError):
    """No package is called that, nor is the name an instance of a package that allows instances."""


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


@cache
def package_of(gateway: str) -> GatewayPackage[Any]:
    """The package a gateway name runs: the package of that name, or the one it is an instance of."""
    if gateway in available():
        return package(gateway)
    if len(gateway) > MAX_GATEWAY_NAME:
        raise UnknownGatewayPackage(f"{gateway} (a gateway's name has at most {MAX_GATEWAY_NAME} characters)")
    for name in sorted(available(), key=len, reverse=True):
        suffix = gateway.removeprefix(f"{name}_")
        if suffix != gateway and _INSTANCE_SUFFIX.fullmatch(suffix):
            found = package(name)
            if not found.allows_instances:
                raise UnknownGatewayPackage(f"{gateway} (the {name} package runs one instance only)")
            return found
    raise UnknownGatewayPackage(gateway)


def is_gateway(name: str) -> bool:
    """Whether `name` is a package or an instance of one (see the module docstring)."""
    try:
        package_of(name)
    except UnknownGatewayPackage:
        return False
    return True


@cache
def settings_type_of(gateway: str) -> type[GatewaySettings]:
    """The settings class of a gateway: its package's, or for an instance one reading `PAYQL_<INSTANCE>_*`."""
    found = package_of(gateway)
    return found.settings_type if gateway == found.name else found.settings_type.for_instance(gateway)
