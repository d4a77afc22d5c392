"""Test clocks are a capability: advanceClock works on a gateway implementing `ClockControlGateway` and is
NOT_SUPPORTED on any other, asked through the protocol and never by the gateway's name."""

from __future__ import annotations

import dataclasses

import pytest

from gateways.base import PaymentGateway
from gateways.clocks import ClockControlGateway
from gateways.registry import GatewayRegistry
from payql.wiring import Services
from resolvers import subscriptions
from resolvers.context import Caller, Principal
from resolvers.errors import ErrorCode, UseCaseError
from tests.features.subscriptions.kit import recurring_price, subscribe
from tests.testkit import Shopper

STAFF = Caller(Principal("clock-staff", is_admin=True))


class WithoutTestClock:
    """The same gateway, name and all, minus its test clock."""

    def __init__(self, inner: PaymentGateway) -> None:
        self._inner = inner
        self.name = inner.name

    def __getattr__(self, attribute: str) -> object:
        if attribute == "advance_customer_clock":
            raise AttributeError(attribute)
        return getattr(self._inner, attribute)


async def test_advance_clock_asks_the_protocol_not_the_name(shopper: Shopper, services: Services) -> None:
    created = await subscribe(shopper, await recurring_price(900))
    subscription_id = created["subscription"]["id"]
    sandbox = services.deps.gateways.get("sandbox")
    assert isinstance(sandbox, ClockControlGateway)

    _, now = await subscriptions.advance_clock(services.deps, STAFF, subscription_id, 60)
    assert now > 0

    without = WithoutTestClock(sandbox)
    assert not isinstance(without, ClockControlGateway)
    deps = dataclasses.replace(services.deps, gateways=GatewayRegistry([without]))  # type: ignore[list-item]
    with pytest.raises(UseCaseError) as refused:
        await subscriptions.advance_clock(deps, STAFF, subscription_id, 60)
    assert refused.value.code is ErrorCode.NOT_SUPPORTED
