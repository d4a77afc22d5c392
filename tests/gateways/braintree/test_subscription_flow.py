"""Braintree subscriptions through PayQL end to end, on the running server with a Braintree gateway pointed at the
emulator: createSubscription with a nonce on the price's plan is ACTIVE with its first charge as a PAID invoice and
captured payment; an upgrade is prorated by Braintree and invoiced; a failed cycle arrives as Braintree's
`subscription_charged_unsuccessfully` notification and leaves the mirror PAST_DUE with the charge owed; cancel at
the period end keeps access until Braintree expires the subscription."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from braintree.test.nonces import Nonces

from db.models import Payment, Price
from gateways.braintree.adapter import BraintreeGateway
from gateways.braintree.sdk import braintree
from payql.wiring import Services
from tests.braintree_emulator import BraintreeEmulator
from tests.features.subscriptions.kit import CANCEL, CHANGE, CREATE, current, has_access, recurring_price
from tests.gateways.braintree.conftest import make_gateway
from tests.gateways.braintree.test_checkout_flow import post_form
from tests.testkit import Shopper, eventually, new_key, settle

Kind = braintree.WebhookNotification.Kind


@pytest.fixture
async def prices() -> tuple[Price, Price]:
    return await recurring_price(1_000), await recurring_price(3_000)


@pytest.fixture
async def braintree_billing(
    emulator: BraintreeEmulator, prices: tuple[Price, Price], services: Services, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BraintreeGateway]:
    basic, pro = prices
    # Plans are made in Braintree's Control Panel; the settings name the plan of each of our prices.
    gateway = make_gateway(emulator, plans={str(basic.id): "basic_monthly", str(pro.id): "pro_monthly"})
    monkeypatch.setitem(services.deps.gateways._gateways, "braintree", gateway)
    yield gateway
    await settle(services)
    await gateway.aclose()


async def subscribe(shopper: Shopper, price: Price) -> dict[str, Any]:
    variables = {
        "input": {
            "priceId": str(price.id),
            "gateway": "braintree",
            "paymentMethod": Nonces.Transactable,
            "idempotencyKey": new_key(),
        }
    }
    payload: dict[str, Any] = (await shopper.data(CREATE, variables))["createSubscription"]
    assert payload["userErrors"] == []
    return payload


async def test_subscribe_upgrade_fail_a_cycle_and_cancel(
    braintree_billing: BraintreeGateway,
    emulator: BraintreeEmulator,
    prices: tuple[Price, Price],
    shopper: Shopper,
    server: str,
    services: Services,
) -> None:
    basic, pro = prices
    created = await subscribe(shopper, basic)
    subscription_id = created["subscription"]["id"]
    assert created["subscription"]["status"] == "ACTIVE"
    assert created["subscription"]["gatewayReference"] == subscription_id  # Braintree's id is ours
    assert created["latestInvoice"]["status"] == "PAID" and created["latestInvoice"]["amountPaid"]["amount"] == 1_000
    await settle(services)
    first = await Payment.get(order_id=created["latestInvoice"]["orderId"])
    assert (first.status, first.amount_captured, first.gateway) == ("PAID", 1_000, "braintree")
    assert await has_access(shopper, basic)

    change = {"input": {"subscriptionId": subscription_id, "priceId": str(pro.id), "idempotencyKey": new_key()}}
    changed = (await shopper.data(CHANGE, change))["changeSubscriptionPlan"]
    assert changed["userErrors"] == []
    assert changed["subscription"]["priceId"] == str(pro.id)
    charges = emulator.billing.subscriptions[subscription_id]["transactions"]
    assert [c["amount"] for c in charges] == ["20.00", "10.00"]  # Braintree's proration of the rest of the month

    async with httpx.AsyncClient() as client:
        billed = await client.post(f"{emulator.base_url}/emulator/subscriptions/{subscription_id}/cycle?decline=1")
    assert billed.status_code == 200
    notification = emulator.sdk().webhook_testing.sample_notification(
        Kind.SubscriptionChargedUnsuccessfully, subscription_id
    )
    assert (await post_form(server, notification)).status_code == 200

    async def past_due() -> bool:
        await settle(services)
        return bool((await current(shopper, subscription_id))["status"] == "PAST_DUE")

    await eventually(past_due)
    owed = [i for i in (await current(shopper, subscription_id))["invoices"] if i["status"] == "OPEN"]
    assert [(i["amountDue"]["amount"], i["declineCode"]) for i in owed] == [(3_000, "generic_decline")]

    cancel = {"input": {"subscriptionId": subscription_id, "atPeriodEnd": False, "idempotencyKey": new_key()}}
    canceled = (await shopper.data(CANCEL, cancel))["cancelSubscription"]
    assert canceled["userErrors"] == [] and canceled["subscription"]["status"] == "CANCELED"
    assert emulator.billing.subscriptions[subscription_id]["status"] == "Canceled"


async def test_cancel_at_period_end_keeps_access_until_braintree_expires_it(
    braintree_billing: BraintreeGateway,
    emulator: BraintreeEmulator,
    prices: tuple[Price, Price],
    shopper: Shopper,
    server: str,
    services: Services,
) -> None:
    basic, _ = prices
    subscription_id = (await subscribe(shopper, basic))["subscription"]["id"]
    cancel = {"input": {"subscriptionId": subscription_id, "atPeriodEnd": True, "idempotencyKey": new_key()}}
    ending = (await shopper.data(CANCEL, cancel))["cancelSubscription"]
    assert ending["userErrors"] == []
    assert (ending["subscription"]["status"], ending["subscription"]["cancelAtPeriodEnd"]) == ("ACTIVE", True)
    assert await has_access(shopper, basic)

    async with httpx.AsyncClient() as client:
        expired = await client.post(f"{emulator.base_url}/emulator/subscriptions/{subscription_id}/cycle")
    assert expired.status_code == 200
    notification = emulator.sdk().webhook_testing.sample_notification(Kind.SubscriptionExpired, subscription_id)
    assert (await post_form(server, notification)).status_code == 200

    async def ended() -> bool:
        await settle(services)
        return bool((await current(shopper, subscription_id))["status"] == "CANCELED")

    await eventually(ended)
    assert not await has_access(shopper, basic)
