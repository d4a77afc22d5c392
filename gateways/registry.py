"""The set of gateways configured in this process, looked up by name, with what each can do, the
public configuration the SPA may read (`options`), each one's health (`health`), how a call is retried
(`retries`), the limits every call is guarded by (`guard`: timeout, bulkhead, and `request_deadline` for one
GraphQL request's gateway work) and the order to try them in for a payment (`route`, the policy of
`gateways.routing` fed with capabilities and circuits)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from gateways import catalog
from gateways.base import PaymentGateway
from gateways.billing import BillingGateway
from gateways.call_guard import CallGuard
from gateways.clocks import ClockControlGateway
from gateways.customers import CustomerDirectory
from gateways.deadline import gateway_deadline
from gateways.errors import NotSupported
from gateways.health import CircuitState, CircuitView, HealthBoard, LocalHealthBoard
from gateways.hosted import HostedCheckoutGateway
from gateways.package import Capabilities
from gateways.retrying import RetryPolicy
from gateways.routing import RoutingTable, route
from gateways.shopper_return import ShopperReturnGateway


class UnknownGateway(LookupError):
    pass


@dataclass(frozen=True, slots=True)
class PaymentOption:
    """One configured gateway as the SPA sees it: what it can do and its public (never secret) configuration."""

    gateway: str
    capabilities: Capabilities
    public_config: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    circuit: CircuitView = field(default_factory=lambda: CircuitView(CircuitState.CLOSED, 0.0, 0.0))


def observed_capabilities(gateway: PaymentGateway, declared: Capabilities | None = None) -> Capabilities:
    """`declared` (every capability when None) narrowed to the protocols the adapter really implements."""
    base = declared or Capabilities(
        payments=True,
        manual_capture=True,
        refunds=True,
        billing=True,
        disputes=True,
        hosted_checkout=True,
        customer_directory=True,
        test_clock=True,
        shopper_return=True,
    )
    return replace(
        base,
        billing=base.billing and isinstance(gateway, BillingGateway),
        hosted_checkout=base.hosted_checkout and isinstance(gateway, HostedCheckoutGateway),
        customer_directory=base.customer_directory and isinstance(gateway, CustomerDirectory),
        test_clock=base.test_clock and isinstance(gateway, ClockControlGateway),
        shopper_return=base.shopper_return and isinstance(gateway, ShopperReturnGateway),
    )


class GatewayRegistry:
    def __init__(
        self,
        gateways: Iterable[PaymentGateway],
        public_configs: Mapping[str, Mapping[str, str]] | None = None,
        *,
        routing: RoutingTable | None = None,
        health: HealthBoard | None = None,
        retries: RetryPolicy | None = None,
        guard: CallGuard | None = None,
    ) -> None:
        self._gateways = {gateway.name: gateway for gateway in gateways}
        self._public_configs = {name: MappingProxyType(dict(config)) for name, config in (public_configs or {}).items()}
        self.routing = routing or RoutingTable(tuple(self._gateways))
        self.health: HealthBoard = health or LocalHealthBoard()
        self.retries = retries or RetryPolicy()
        # The guard the adapters' calls were wrapped with (`gateways.call_guard.guard_gateway`), if any.
        self.guard = guard or CallGuard()

    def request_deadline(self) -> AbstractContextManager[None]:
        """Open the deadline that one GraphQL request's gateway calls and retries keep to."""
        return gateway_deadline(self.guard.limits.request_deadline_seconds)

    def route(self, currency: str, *, chosen: str | None, needs: Callable[[Capabilities], bool]) -> tuple[str, ...]:
        """The gateways to try for a payment in `currency`, in order: the chosen one alone, else the policy's
        list without those that lack what the payment `needs` or whose circuit is open."""

        def usable(name: str) -> bool:
            return name in self._gateways and needs(self.capabilities(name)) and self.health.available(name)

        return route(self.routing, currency, chosen=chosen, usable=usable)

    def get(self, name: str) -> PaymentGateway:
        try:
            return self._gateways[name]
        except KeyError:
            raise UnknownGateway(name) from None

    def billing(self, name: str) -> BillingGateway:
        """The gateway's billing engine; `NotSupported` when it does not bill subscriptions."""
        gateway = self.get(name)
        if not (self.capabilities(name).billing and isinstance(gateway, BillingGateway)):
            raise NotSupported(f"the {name} gateway does not support subscriptions")
        return gateway

    def names(self) -> list[str]:
        return sorted(self._gateways)

    def capabilities(self, name: str) -> Capabilities:
        """What its package declares, and only what the adapter's protocols back."""
        gateway = self.get(name)
        declared = catalog.package_of(name).capabilities if catalog.is_gateway(name) else None
        return observed_capabilities(gateway, declared)

    def options(self, currency: str | None = None) -> list[PaymentOption]:
        """Every gateway by name; for a `currency`, those the policy would try now, in its order (read only:
        no half-open probe is taken)."""
        names = self.names()
        if currency is not None:
            names = [
                name
                for name in self.routing.candidates(currency)
                if name in self._gateways and self.health.available(name)
            ]
        return [
            PaymentOption(
                name,
                self.capabilities(name),
                self._public_configs.get(name, MappingProxyType({})),
                self.health.view(name),
            )
            for name in names
        ]

    async def aclose(self) -> None:
        for gateway in self._gateways.values():
            await gateway.aclose()
