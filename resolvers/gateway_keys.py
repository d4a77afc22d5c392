"""The public keys the SPA needs to load a gateway's browser SDK; never a secret.

Only what the gateway publishes for browsers (Stripe's publishable key) is read here, from the gateway
configured in this process; an unconfigured gateway has no key (None).
"""

from __future__ import annotations

from gateways.stripe.adapter import StripeGateway
from resolvers.context import Deps


def stripe_publishable_key(deps: Deps) -> str | None:
    if "stripe" not in deps.gateways.names():
        return None
    gateway = deps.gateways.get("stripe")
    return gateway.publishable_key if isinstance(gateway, StripeGateway) else None
