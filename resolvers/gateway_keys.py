"""The public configuration the SPA needs to load a gateway's browser SDK; never a secret.

Only what a gateway package declares public (`GatewayPackage.public_config`: publishable keys, client ids)
is read here, from the gateways configured in this process; an unconfigured gateway has no options.
"""

from __future__ import annotations

from gateways.registry import PaymentOption
from resolvers.context import Deps


def payment_options(deps: Deps, currency: str | None = None) -> list[PaymentOption]:
    return deps.gateways.options(currency)


def public_value(deps: Deps, gateway: str, name: str) -> str | None:
    """One public configuration value of `gateway`; None when it is not configured here or has no such value."""
    for option in deps.gateways.options():
        if option.gateway == gateway:
            return option.public_config.get(name)
    return None
