"""Failover across gateways, on the running server: a second, independent sandbox instance
("sandbox_backup", its own processor and fault switches) is built as `payql serve` builds it from
PAYQL_GATEWAYS=sandbox,sandbox_backup (through the package contract) and joins the server's registry behind
the routing policy "*:sandbox,sandbox_backup" that such settings give. (A whole server started with both
instances is tests/features/test_gateway_instances.py; this one moves the breaker's clock, so it stays in
process.)

A primary that refuses before acting fails over to the backup (one charge in total); a primary whose
outcome is unknown is never charged elsewhere; the breaker opens after failures and a half-open probe
closes it after recovery; a payment one of whose attempts had an unknown outcome is never failed over, whatever
a later attempt says; an explicit choice of gateway is never re-routed; with retries on, an unknown
outcome is retried on its own gateway with the same key within the request.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from db.models import Payment
from gateways import catalog
from gateways.health import BreakerPolicy, CircuitState, LocalHealthBoard
from gateways.registry import GatewayRegistry
from gateways.retrying import RetryPolicy
from gateways.routing import RoutingTable
from gateways.sandbox.package import PreparedSandbox
from gateways.sandbox.processor import SandboxProcessor
from gateways.sandbox.processor.faults import FaultMode, FaultSwitch
from payql import shared_circuits
from payql.gateway_observation import observe_gateway
from payql.settings import Settings
from payql.wiring import Services
from tests.testkit import (
    CHECKOUT,
    TEST_WEBHOOK_SECRET,
    Shopper,
    checkout_input,
    make_price,
    sandbox_webhooks_held,
    settle,
)

BACKUP = "sandbox_backup"


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Gateways:
    primary: SandboxProcessor
    backup: SandboxProcessor
    health: LocalHealthBoard
    clock: Clock


async def keep_to_ourselves(*args: object) -> None:
    return None


@pytest.fixture
async def gateways(
    sandbox: SandboxProcessor,
    services: Services,
    server_settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Gateways]:
    # An armed fault hits the next sandbox call, whoever makes it: let earlier tests' work finish first.
    await settle(services)
    registry: GatewayRegistry = services.deps.gateways
    assert isinstance(registry.health, LocalHealthBoard)
    health = registry.health
    clock = Clock()
    # A fresh breaker for this test, on a clock the test moves: two failures open it for 30 s.
    monkeypatch.setattr(health, "policy", BreakerPolicy(consecutive_failures=2, open_seconds=30))
    monkeypatch.setattr(health, "clock", clock)
    monkeypatch.setattr(health, "_circuits", {})
    # This process's circuits are the test's own: nothing is exchanged with other instances meanwhile.
    monkeypatch.setattr(shared_circuits, "sync_circuits", keep_to_ourselves)
    with_backup = Settings(
        gateways=["sandbox", BACKUP],
        routing=f"*:sandbox,{BACKUP}",
        gateway_settings={
            "sandbox": server_settings.gateway("sandbox"),
            BACKUP: {"state_path": tmp_path / "backup.sqlite3", "webhook_secrets": [TEST_WEBHOOK_SECRET]},
        },
    )
    # The backup as the server's wiring prepares an enabled instance (without background deliveries).
    prepared = catalog.package_of(BACKUP).prepare(
        with_backup.gateway(BACKUP), public_base_url=server_settings.public_base_url, background=False
    )
    assert isinstance(prepared, PreparedSandbox)
    adapter = await prepared.open()
    assert adapter.name == BACKUP
    monkeypatch.setitem(registry._gateways, BACKUP, observe_gateway(adapter, health))
    monkeypatch.setattr(registry, "routing", RoutingTable.parse(with_backup.routing, with_backup.gateways))
    yield Gateways(sandbox, prepared.processor, health, clock)
    sandbox.clear_faults()
    await adapter.aclose()


def routed_input(price: Any, **changes: Any) -> dict[str, Any]:
    """A checkout that leaves the gateway to the routing policy."""
    values = {key: value for key, value in checkout_input(price).items() if key != "gateway"}
    return {"input": values | changes}


async def charges(processor: SandboxProcessor, order_id: str) -> int:
    return len(
        [
            intent
            for intent in await processor.list_payment_intents()
            if intent.metadata.get("payql_order_id") == order_id and intent.amount_received
        ]
    )


async def attempts(order_id: str) -> list[tuple[str, str]]:
    return [(p.gateway, str(p.status)) for p in await Payment.filter(order_id=order_id).order_by("created_at")]


async def options(shopper: Shopper) -> dict[str, tuple[str, bool]]:
    query = "{ paymentOptions { gateway available circuit { state failureRate } } }"
    found = (await shopper.data(query, {}))["paymentOptions"]
    return {option["gateway"]: (option["circuit"]["state"], option["available"]) for option in found}


async def routed_options(shopper: Shopper, currency: str) -> list[str]:
    query = "query($currency: String) { paymentOptions(currency: $currency) { gateway } }"
    return [option["gateway"] for option in (await shopper.data(query, {"currency": currency}))["paymentOptions"]]


async def test_a_primary_that_refuses_before_acting_fails_over_to_the_backup(
    shopper: Shopper, gateways: Gateways
) -> None:
    price = await make_price(4100)
    gateways.primary.arm_fault("unavailable", 1)

    paid = (await shopper.data(CHECKOUT, routed_input(price)))["checkout"]

    assert paid["userErrors"] == []
    assert paid["order"]["status"] == "PAID"
    order_id = paid["order"]["id"]
    assert await attempts(order_id) == [("sandbox", "FAILED"), (BACKUP, "PAID")]
    assert paid["payment"]["id"] == str((await Payment.get(order_id=order_id, gateway=BACKUP)).id)
    assert await charges(gateways.primary, order_id) == 0
    assert await charges(gateways.backup, order_id) == 1


async def test_an_unknown_outcome_is_never_charged_on_the_backup(
    shopper: Shopper, gateways: Gateways, services: Services
) -> None:
    price = await make_price(4200)
    variables = routed_input(price)
    gateways.primary.arm_fault("timeout", 1)

    # The sandbox's webhook about the charge it made would settle the payment behind the test's back.
    async with sandbox_webhooks_held(services):
        unknown = (await shopper.data(CHECKOUT, variables))["checkout"]

        assert [e["code"] for e in unknown["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
        order_id = unknown["order"]["id"]
        assert await attempts(order_id) == [("sandbox", "PENDING")]
        assert await charges(gateways.backup, order_id) == 0
        # The retry resumes the same payment on the same gateway with the same key.
        retried = (await shopper.data(CHECKOUT, variables))["checkout"]
        assert retried["order"]["status"] == "PAID"
        assert await attempts(order_id) == [("sandbox", "PAID")]
    assert await charges(gateways.primary, order_id) == 1
    assert await charges(gateways.backup, order_id) == 0


async def test_the_breaker_opens_after_failures_and_a_half_open_probe_closes_it(
    shopper: Shopper, gateways: Gateways
) -> None:
    gateways.primary.arm_fault("unavailable", 2)
    for amount in (4301, 4302):
        failed_over = (await shopper.data(CHECKOUT, routed_input(await make_price(amount))))["checkout"]
        assert failed_over["order"]["status"] == "PAID"
    assert gateways.health.view("sandbox").state is CircuitState.OPEN
    assert await options(shopper) == {"sandbox": ("OPEN", False), BACKUP: ("CLOSED", True)}
    assert await routed_options(shopper, "USD") == [BACKUP]

    # Open: the primary is not even tried (it has recovered, but nobody asks it yet).
    skipped = (await shopper.data(CHECKOUT, routed_input(await make_price(4303))))["checkout"]
    assert await attempts(skipped["order"]["id"]) == [(BACKUP, "PAID")]

    gateways.clock.now += 30
    probed = (await shopper.data(CHECKOUT, routed_input(await make_price(4304))))["checkout"]
    assert await attempts(probed["order"]["id"]) == [("sandbox", "PAID")]
    assert gateways.health.view("sandbox").state is CircuitState.CLOSED
    assert await routed_options(shopper, "USD") == ["sandbox", BACKUP]


async def test_an_explicit_choice_of_gateway_is_never_rerouted(shopper: Shopper, gateways: Gateways) -> None:
    price = await make_price(4400)
    gateways.primary.arm_fault("unavailable", 1)

    refused = (await shopper.data(CHECKOUT, routed_input(price, gateway="sandbox")))["checkout"]

    assert [e["code"] for e in refused["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    order_id = refused["order"]["id"]
    assert await attempts(order_id) == [("sandbox", "PENDING")]
    assert await charges(gateways.backup, order_id) == 0


@pytest.fixture
def retries(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three calls per charge, without waiting between them (the test server retries nothing by default)."""
    monkeypatch.setattr(services.deps.gateways, "retries", RetryPolicy(attempts=3, base_seconds=0, max_seconds=0))


async def test_an_unknown_outcome_is_retried_on_its_own_gateway_with_the_same_key(
    shopper: Shopper, gateways: Gateways, retries: None
) -> None:
    price = await make_price(4500)
    gateways.primary.arm_fault("timeout", 2)

    paid = (await shopper.data(CHECKOUT, routed_input(price)))["checkout"]

    assert paid["userErrors"] == []
    order_id = paid["order"]["id"]
    assert await attempts(order_id) == [("sandbox", "PAID")]
    assert await charges(gateways.primary, order_id) == 1
    assert await charges(gateways.backup, order_id) == 0


class FaultsInTurn(FaultSwitch):
    """The processor's next calls hit these faults, one each, in turn (its HTTP switch arms one mode at a time)."""

    def __init__(self, *modes: FaultMode) -> None:
        super().__init__()
        self._modes = list(modes)

    def take(self) -> FaultMode | None:
        return self._modes.pop(0) if self._modes else None


async def test_a_refusal_after_an_unknown_outcome_is_never_failed_over(
    shopper: Shopper, gateways: Gateways, services: Services, retries: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    price = await make_price(4560)
    variables = routed_input(price)
    # The first attempt charges and its answer is lost; the next two are refused before acting. The refusals
    # say nothing about the first attempt: failing over would charge the order twice.
    faults = FaultsInTurn(FaultMode.TIMEOUT, FaultMode.UNAVAILABLE, FaultMode.UNAVAILABLE)
    monkeypatch.setattr(gateways.primary, "_faults", faults)

    async with sandbox_webhooks_held(services):
        unknown = (await shopper.data(CHECKOUT, variables))["checkout"]

        assert [e["code"] for e in unknown["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
        order_id = unknown["order"]["id"]
        assert await attempts(order_id) == [("sandbox", "PENDING")]
        assert faults.take() is None  # all three attempts were made on the primary
        retried = (await shopper.data(CHECKOUT, variables))["checkout"]
        assert retried["order"]["status"] == "PAID"
        assert await attempts(order_id) == [("sandbox", "PAID")]
    assert await charges(gateways.primary, order_id) == 1
    assert await charges(gateways.backup, order_id) == 0


async def test_a_chosen_gateway_unreachable_for_a_moment_is_retried_and_paid(
    shopper: Shopper, gateways: Gateways, retries: None
) -> None:
    price = await make_price(4550)
    gateways.primary.arm_fault("unavailable", 2)

    paid = (await shopper.data(CHECKOUT, routed_input(price, gateway="sandbox")))["checkout"]

    assert paid["userErrors"] == []
    order_id = paid["order"]["id"]
    assert await attempts(order_id) == [("sandbox", "PAID")]
    assert await charges(gateways.primary, order_id) == 1


async def test_a_chosen_gateway_that_stays_unreachable_is_retried_then_left_in_flight(
    shopper: Shopper, gateways: Gateways, retries: None
) -> None:
    price = await make_price(4600)
    gateways.primary.arm_fault("unavailable", 3)

    refused = (await shopper.data(CHECKOUT, routed_input(price, gateway="sandbox")))["checkout"]

    assert [e["code"] for e in refused["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    order_id = refused["order"]["id"]
    assert await attempts(order_id) == [("sandbox", "PENDING")]
    assert await charges(gateways.primary, order_id) == 0
    assert await charges(gateways.backup, order_id) == 0


async def test_a_half_open_backup_is_still_there_to_fail_over_to(
    shopper: Shopper, gateways: Gateways, services: Services
) -> None:
    for _ in range(2):
        gateways.health.record(BACKUP, ok=False, seconds=0.1)
    gateways.clock.now += 30
    # Checkouts that never need the backup plan their route through it without taking its probe.
    for amount in (4701, 4702):
        paid = (await shopper.data(CHECKOUT, routed_input(await make_price(amount))))["checkout"]
        assert await attempts(paid["order"]["id"]) == [("sandbox", "PAID")]
    await settle(services)  # their webhooks read the primary back: let them, or one takes the fault
    gateways.primary.arm_fault("unavailable", 1)

    failed_over = (await shopper.data(CHECKOUT, routed_input(await make_price(4703))))["checkout"]

    assert await attempts(failed_over["order"]["id"]) == [("sandbox", "FAILED"), (BACKUP, "PAID")]
    assert gateways.health.view(BACKUP).state is CircuitState.CLOSED
