"""The set of gateways configured in this process, looked up by name."""

from __future__ import annotations

from collections.abc import Iterable

from gateways.base import PaymentGateway
from gateways.billing import BillingGateway
from gateways.errors import NotSupported


class UnknownGateway(LookupError):
    pass


class GatewayRegistry:
    def __init__(self, gateways: Iterable[PaymentGateway]) -> None:
        self._gateways = {gateway.name: gateway for gateway in gateways}

    def get(self, name: str) -> PaymentGateway:
        try:
            return self._gateways[name]
        except KeyError:
            raise UnknownGateway(name) from None

    def billing(self, name: str) -> BillingGateway:
        """The gateway's billing engine; `NotSupported` when it does not bill subscriptions."""
        gateway = self.get(name)
        if not isinstance(gateway, BillingGateway):
            raise NotSupported(f"the {name} gateway does not support subscriptions")
        return gateway

    def names(self) -> list[str]:
        return sorted(self._gateways)

    async def aclose(self) -> None:
        for gateway in self._gateways.values():
            await gateway.aclose()
