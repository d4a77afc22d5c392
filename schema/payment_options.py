"""GraphQL types of `paymentOptions`: each configured gateway, what it can do and its public configuration.

Only what a gateway package declares public reaches here (publishable keys, client ids, a tokenization URL);
never a secret. The SPA reads this to pick its payment form; nothing here names a gateway.
"""

from __future__ import annotations

from enum import StrEnum

import strawberry

from gateways.health import CircuitState
from gateways.registry import PaymentOption


@strawberry.type(description="A public configuration value the SPA's gateway SDK needs, e.g. publishableKey.")
class PublicConfigEntry:
    name: str
    value: str


@strawberry.type(
    name="ClientTokenization", description="How the SPA turns a card into `paymentMethod`: the browser SDK to load."
)
class ClientTokenizationType:
    sdk: str
    config_keys: list[str] = strawberry.field(description="The publicConfig names that SDK needs.")


@strawberry.type(
    name="GatewayCapabilities", description="What a gateway can do, as its package declares and its adapter implements."
)
class GatewayCapabilitiesType:
    payments: bool
    manual_capture: bool
    refunds: bool
    billing: bool
    disputes: bool
    hosted_checkout: bool
    customer_directory: bool
    test_clock: bool = strawberry.field(description="Development gateways only: staff may move test clocks.")
    shopper_return: bool = strawberry.field(
        description="completePayment takes `returned`: what this gateway's checkout hands the SPA."
    )
    collects_payment_method: bool = strawberry.field(
        description="A payment needs no paymentMethod first: its nextAction (an approval redirect, the gateway's "
        "checkout) collects one from the shopper."
    )
    client_tokenization: ClientTokenizationType | None


@strawberry.enum(name="CircuitState", description="A gateway's circuit breaker in the answering instance.")
class CircuitStateEnum(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@strawberry.type(name="Circuit", description="The gateway's health as this instance's circuit breaker sees it.")
class CircuitType:
    state: CircuitStateEnum
    failure_rate: float = strawberry.field(description="Failed calls over the recent window, 0 to 1.")


@strawberry.type(name="PaymentOption", description="A gateway this server can charge through, for the SPA.")
class PaymentOptionType:
    gateway: str
    capabilities: GatewayCapabilitiesType
    public_config: list[PublicConfigEntry]
    available: bool = strawberry.field(description="False while its circuit is open: payments skip it.")
    circuit: CircuitType

    @classmethod
    def from_option(cls, option: PaymentOption) -> PaymentOptionType:
        declared = option.capabilities
        tokenization = declared.client_tokenization
        return cls(
            gateway=option.gateway,
            capabilities=GatewayCapabilitiesType(
                payments=declared.payments,
                manual_capture=declared.manual_capture,
                refunds=declared.refunds,
                billing=declared.billing,
                disputes=declared.disputes,
                hosted_checkout=declared.hosted_checkout,
                customer_directory=declared.customer_directory,
                test_clock=declared.test_clock,
                shopper_return=declared.shopper_return,
                collects_payment_method=declared.collects_payment_method,
                client_tokenization=(
                    ClientTokenizationType(sdk=tokenization.sdk, config_keys=list(tokenization.config_keys))
                    if tokenization
                    else None
                ),
            ),
            public_config=[
                PublicConfigEntry(name=name, value=value) for name, value in sorted(option.public_config.items())
            ],
            available=option.circuit.state is not CircuitState.OPEN,
            circuit=CircuitType(
                state=CircuitStateEnum(option.circuit.state.value), failure_rate=option.circuit.failure_rate
            ),
        )
