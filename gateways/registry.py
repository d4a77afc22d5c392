"""The set of gateways configured in this process, looked up by name."""

from __future__ import annotations

from collections.abc import Iterable

from gateways.base import PaymentGateway


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

    def names(self) -> list[str]:
        return sorted(self._gateways)

    async def aclose(self) -> None:
        for gateway in self._gateways.values():
            await gateway.aclose()
