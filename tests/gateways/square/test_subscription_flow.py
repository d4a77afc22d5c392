"""Square subscriptions through PayQL end to end, on the running server with the emulator's signed notifications
reaching `/webhooks/square`: createSubscription with a Web Payments SDK token is ACTIVE with its first invoice
PAID and its payment captured; a renewal billed by Square (invoice.payment_made, subscription.updated) arrives as a
second PAID cycle; a declined renewal (invoice.scheduled_charge_failed) leaves it PAST_DUE with the decline owed;
cancel at the period end keeps access until Square ends it; cancelling now is NOT_SUPPORTED."""

from __future__ import annotations

from typing import Any

from db.models import Invoice, Payment, Price
from gateways.square.adapter import SquareGateway
from payql.wiring import Services
from tests.features.subscriptions.kit import CANCEL, CREATE, current, has_access, recurring_price
from tests.gateways.square.conftest import NONCE_OK
from tests.square_emulator import SquareEmulator
from tests.testkit import Shopper, eventually, new_key, settle


async def subscribe(shopper: Shopper, price: Price) -> dict[str, Any]:
    variables = {
        "input": {"priceId": str(price.id), "gateway": "square", "paymentMethod": NONCE_OK, "idempotencyKey": new_key()}
    }
    payload: dict[str, Any] = (await shopper.data(CREATE, variables))["createSubscription"]
    assert payload["userErrors"] == [], payload
    return payload


async def mirrored(services: Services, emulator: SquareEmulator, shopper: Shopper, subscription_id: str) -> Any:
    """Once every delivery the emulator sent has reached PayQL and been applied: the subscription as PayQL shows it."""
    await emulator.drain()
    await settle(services)
    return await current(shopper, subscription_id)


async def test_subscribe_renew_fail_a_renewal_and_cancel(
    square_in_payql: SquareGateway, emulator: SquareEmulator, shopper: Shopper, services: Services
) -> None:
    price = await recurring_price(1_500)
    created = await subscribe(shopper, price)
    subscription_id, reference = created["subscription"]["id"], created["subscription"]["gatewayReference"]
    assert (created["subscription"]["status"], created["subscription"]["gateway"]) == ("ACTIVE", "square")
    assert reference in emulator.billing.subscriptions
    first = created["latestInvoice"]
    assert (first["status"], first["billingReason"], first["amountPaid"]["amount"]) == (
        "PAID",
        "subscription_create",
        1_500,
    )
    await settle(services)
    payment = await Payment.get(order_id=first["orderId"])
    assert (payment.status, payment.amount_captured, payment.gateway) == ("PAID", 1_500, "square")
    assert await has_access(shopper, price)

    emulator.billing.renew(reference)  # Square bills the next period on the card on file
    await mirrored(services, emulator, shopper, subscription_id)

    async def two_paid() -> bool:
        await settle(services)
        return len(await Invoice.filter(subscription_id=subscription_id, status="PAID")) == 2

    await eventually(two_paid)
    renewal = await Invoice.get(subscription_id=subscription_id, billing_reason="subscription_cycle")
    renewal_payment = await Payment.get(order_id=renewal.order_id)
    assert (renewal.amount_paid, renewal_payment.status, renewal_payment.amount_captured) == (1_500, "PAID", 1_500)

    emulator.decline_next("INSUFFICIENT_FUNDS")
    emulator.billing.renew(reference)

    async def past_due() -> bool:
        return bool((await mirrored(services, emulator, shopper, subscription_id))["status"] == "PAST_DUE")

    await eventually(past_due)
    owed = [i for i in (await current(shopper, subscription_id))["invoices"] if i["status"] == "OPEN"]
    assert [(i["amountDue"]["amount"], i["declineCode"], i["attemptCount"]) for i in owed] == [
        (1_500, "insufficient_funds", 1)
    ]

    now = {"input": {"subscriptionId": subscription_id, "atPeriodEnd": False, "idempotencyKey": new_key()}}
    refused = (await shopper.data(CANCEL, now))["cancelSubscription"]
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_SUPPORTED"]

    later = {"input": {"subscriptionId": subscription_id, "atPeriodEnd": True, "idempotencyKey": new_key()}}
    ending = (await shopper.data(CANCEL, later))["cancelSubscription"]
    assert ending["userErrors"] == [], ending
    assert ending["subscription"]["cancelAtPeriodEnd"] is True
    assert emulator.billing.subscriptions[reference].canceled_date is not None

    emulator.billing.renew(reference)  # the period ends: Square carries out the CANCEL

    async def canceled() -> bool:
        return bool((await mirrored(services, emulator, shopper, subscription_id))["status"] == "CANCELED")

    await eventually(canceled)
    assert not await has_access(shopper, price)


async def test_a_price_square_cannot_bill_is_refused(
    square_in_payql: SquareGateway, emulator: SquareEmulator, shopper: Shopper
) -> None:
    price = await recurring_price(1_500)
    price.recurring_interval_count = 5  # every five months: no Square cadence
    await price.save()
    variables = {
        "input": {"priceId": str(price.id), "gateway": "square", "paymentMethod": NONCE_OK, "idempotencyKey": new_key()}
    }
    refused = (await shopper.data(CREATE, variables))["createSubscription"]
    assert [e["code"] for e in refused["userErrors"]] == ["NOT_SUPPORTED"]
    assert emulator.calls.requests == []
