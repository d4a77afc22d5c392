"""PayPal subscriptions through PayQL end to end: GraphQL over HTTP against the running server with a PayPal
gateway pointed at the emulator, whose signed webhooks reach our `/webhooks/paypal`.

createSubscription answers INCOMPLETE with the approve link; the buyer approves at PayPal; the activation and
the first cycle's sale arrive as webhooks (in any order, any number of times) and leave the mirror ACTIVE with a
PAID invoice whose order is captured; pause and resume are suspend and activate; staff cancel now with a full
refund of the sale; a failed cycle is dunned on our schedule.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from db.ledger import ledger_mismatches, ledger_net_captured
from db.models import Invoice, Order, Payment, PaymentEvent, Price, Refund, Subscription
from gateways.paypal import PayPalGateway
from payql.wiring import Services
from tests.features.subscriptions.kit import CANCEL, CREATE, PAUSE, RESUME, current, has_access, recurring_price
from tests.paypal_emulator import PayPalEmulator
from tests.smtp_server import SmtpServer
from tests.testkit import Shopper, email_of, eventually, new_key, settle

RETURN_URL = "https://shop.example/account/subscription"


async def subscribe_with_paypal(shopper: Shopper, price: Price) -> dict[str, Any]:
    variables = {
        "input": {
            "priceId": str(price.id),
            "gateway": "paypal",
            "paymentMethod": "paypal",
            "returnUrl": RETURN_URL,
            "idempotencyKey": new_key(),
        }
    }
    payload: dict[str, Any] = (await shopper.data(CREATE, variables))["createSubscription"]
    assert payload["userErrors"] == []
    return payload


async def at_emulator(emulator: PayPalEmulator, path: str) -> None:
    """A test-only emulator route: the buyer approving, PayPal billing a cycle."""
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{emulator.base_url}{path}")
    assert response.status_code == 200, response.text


async def deliver(emulator: PayPalEmulator, server: str, events: list[dict[str, Any]]) -> None:
    """Deliver events as PayPal would, signed now, one after the other."""
    async with httpx.AsyncClient() as client:
        for event in events:
            delivery = emulator.sign(event)
            response = await client.post(f"{server}/webhooks/paypal", content=delivery.body, headers=delivery.headers)
            assert response.status_code == 200, response.text


async def wait_for_status(services: Services, shopper: Shopper, subscription_id: str, status: str) -> dict[str, Any]:
    async def reached() -> bool:
        await settle(services)
        return bool((await current(shopper, subscription_id))["status"] == status)

    await eventually(reached)
    return await current(shopper, subscription_id)


async def assert_balanced(subscription_id: str) -> None:
    """The ledger agrees with every payment of the subscription's customer (other tests' payments aside)."""
    subscription = await Subscription.get(id=subscription_id)
    ours = {p.id for p in await Payment.filter(order__customer_id=subscription.customer_id)}
    assert ours and [m for m in await ledger_mismatches() if m.payment_id in ours] == []


async def approved_and_active(
    emulator: PayPalEmulator, services: Services, shopper: Shopper, price: Price
) -> tuple[str, str]:
    """A subscription the buyer approved, mirrored ACTIVE with its first sale paid: (our id, PayPal's id)."""
    created = await subscribe_with_paypal(shopper, price)
    subscription_id = created["subscription"]["id"]
    reference = created["subscription"]["gatewayReference"]
    await at_emulator(emulator, f"/emulator/subscriptions/{reference}/approve")
    await emulator.drain()
    active = await wait_for_status(services, shopper, subscription_id, "ACTIVE")
    assert [i["status"] for i in active["invoices"] if i["billingReason"] == "subscription_cycle"] == ["PAID"]
    return subscription_id, reference


def state_of(subscription: dict[str, Any]) -> tuple[object, ...]:
    invoices = sorted((i["id"], i["status"], i["amountPaid"]["amount"], i["orderId"]) for i in subscription["invoices"])
    return subscription["status"], subscription["failedAttempts"], tuple(invoices)


async def test_approve_bill_pause_resume_and_cancel_with_a_full_refund(
    paypal_in_payql: PayPalGateway, emulator: PayPalEmulator, shopper: Shopper, admin: Shopper, services: Services
) -> None:
    price = await recurring_price(1_250)
    created = await subscribe_with_paypal(shopper, price)
    subscription_id = created["subscription"]["id"]
    reference = created["subscription"]["gatewayReference"]
    assert created["subscription"]["status"] == "INCOMPLETE"
    assert created["nextAction"]["type"] == "REDIRECT"
    assert created["nextAction"]["redirectUrl"].startswith(f"{emulator.base_url}/webapps/billing/subscriptions")
    assert not await has_access(shopper, price)

    await at_emulator(emulator, f"/emulator/subscriptions/{reference}/approve")
    active = await wait_for_status(services, shopper, subscription_id, "ACTIVE")
    assert await has_access(shopper, price)

    await at_emulator(emulator, f"/emulator/subscriptions/{reference}/bill")

    async def two_paid_cycles() -> bool:
        await settle(services)
        invoices = (await current(shopper, subscription_id))["invoices"]
        return [i["status"] for i in invoices if i["billingReason"] == "subscription_cycle"] == ["PAID", "PAID"]

    await eventually(two_paid_cycles)
    active = await current(shopper, subscription_id)
    cycles = [i for i in active["invoices"] if i["billingReason"] == "subscription_cycle"]
    assert {i["amountPaid"]["amount"] for i in cycles} == {1_250}
    for invoice in cycles:
        payment = await Payment.get(order_id=invoice["orderId"])
        assert (payment.status, payment.amount_captured, payment.gateway) == ("PAID", 1_250, "paypal")
        assert payment.gateway_reference == f"paypal_sale:{(await Invoice.get(id=invoice['id'])).gateway_reference}"
        assert (await Order.get(id=invoice["orderId"])).status == "PAID"
        assert await PaymentEvent.filter(payment_id=payment.id, type="CAPTURED").count() == 1
    await assert_balanced(subscription_id)

    paused = await shopper.data(PAUSE, {"input": {"subscriptionId": subscription_id, "idempotencyKey": new_key()}})
    assert paused["pauseSubscription"]["userErrors"] == []
    assert paused["pauseSubscription"]["subscription"]["status"] == "PAUSED"
    assert emulator.billing.subscriptions[reference].status == "SUSPENDED"
    resumed = await shopper.data(RESUME, {"input": {"subscriptionId": subscription_id, "idempotencyKey": new_key()}})
    assert resumed["resumeSubscription"]["subscription"]["status"] == "ACTIVE"
    assert emulator.billing.subscriptions[reference].status == "ACTIVE"
    await emulator.drain()
    await settle(services)
    assert (await current(shopper, subscription_id))["status"] == "ACTIVE"  # the late SUSPENDED event changes nothing

    variables = {
        "input": {
            "subscriptionId": subscription_id,
            "atPeriodEnd": False,
            "refund": "FULL",
            "idempotencyKey": new_key(),
        }
    }
    canceled = (await admin.data(CANCEL, variables))["cancelSubscription"]
    assert canceled["userErrors"] == []
    assert canceled["subscription"]["status"] == "CANCELED"
    assert emulator.billing.subscriptions[reference].status == "CANCELLED"
    (refunded_sale,) = [s for s in emulator.billing.sales.values() if s.refunded]
    assert (refunded_sale.state, refunded_sale.refunded) == ("refunded", refunded_sale.amount.value)
    payment = await Payment.get(gateway="paypal", gateway_reference=f"paypal_sale:{refunded_sale.id}")
    refund = await Refund.get(payment_id=payment.id)
    assert (refund.status, refund.amount) == ("SUCCEEDED", 1_250)
    assert refund.gateway_reference in emulator.billing.sale_refunds
    assert (await Order.get(id=payment.order_id)).status == "REFUNDED"
    await emulator.drain()
    await settle(services)  # PAYMENT.SALE.REFUNDED and BILLING.SUBSCRIPTION.CANCELLED change nothing more
    assert (await Refund.get(id=refund.id)).status == "SUCCEEDED"
    assert await PaymentEvent.filter(payment_id=payment.id, type="REFUNDED").count() == 1
    assert await ledger_net_captured(payment.id) == 0
    assert (await current(shopper, subscription_id))["status"] == "CANCELED"
    assert not await has_access(shopper, price)
    await assert_balanced(subscription_id)


async def test_staff_cancel_now_with_a_prorated_refund_of_the_sale(
    paypal_in_payql: PayPalGateway,
    emulator: PayPalEmulator,
    shopper: Shopper,
    admin: Shopper,
    services: Services,
    server: str,
) -> None:
    emulator.webhook_url = None  # held back until the sale is made to look ten days old
    price = await recurring_price(3_000)
    created = await subscribe_with_paypal(shopper, price)
    subscription_id = created["subscription"]["id"]
    await at_emulator(emulator, f"/emulator/subscriptions/{created['subscription']['gatewayReference']}/approve")
    (sale,) = emulator.billing.sales.values()
    sale.create_time = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%SZ")
    await deliver(emulator, server, list(emulator.events))
    active = await wait_for_status(services, shopper, subscription_id, "ACTIVE")
    (paid,) = [i for i in active["invoices"] if i["status"] == "PAID"]
    start, end = datetime.fromisoformat(paid["periodStart"]), datetime.fromisoformat(paid["periodEnd"])
    assert 28 <= (end - start).days <= 31  # one month of the plan, from the sale

    variables = {
        "input": {
            "subscriptionId": subscription_id,
            "atPeriodEnd": False,
            "refund": "PRORATED",
            "idempotencyKey": new_key(),
        }
    }
    canceled = (await admin.data(CANCEL, variables))["cancelSubscription"]
    assert canceled["userErrors"] == [] and canceled["subscription"]["status"] == "CANCELED"
    payment = await Payment.get(gateway="paypal", gateway_reference=f"paypal_sale:{sale.id}")
    refund = await Refund.get(payment_id=payment.id)
    unused = (end - datetime.now(UTC)) / (end - start)
    assert refund.status == "SUCCEEDED" and abs(refund.amount - 3_000 * unused) < 10
    assert sale.state == "partially_refunded" and sale.refunded * 100 == refund.amount
    assert (await Order.get(id=payment.order_id)).status == "PARTIALLY_REFUNDED"
    await assert_balanced(subscription_id)


async def test_webhooks_twice_and_in_reverse_order_leave_the_same_state(
    paypal_in_payql: PayPalGateway, emulator: PayPalEmulator, shopper: Shopper, services: Services, server: str
) -> None:
    emulator.webhook_url = None  # held back, then delivered by hand
    price = await recurring_price(800)
    created = await subscribe_with_paypal(shopper, price)
    subscription_id = created["subscription"]["id"]
    reference = created["subscription"]["gatewayReference"]
    await at_emulator(emulator, f"/emulator/subscriptions/{reference}/approve")
    await at_emulator(emulator, f"/emulator/subscriptions/{reference}/bill")
    events = list(emulator.events)
    kinds = [e["event_type"] for e in events]
    assert kinds.count("PAYMENT.SALE.COMPLETED") == 2 and "BILLING.SUBSCRIPTION.ACTIVATED" in kinds
    assert (await current(shopper, subscription_id))["status"] == "INCOMPLETE"  # nothing arrived yet

    await deliver(emulator, server, events[::-1])
    await settle(services)
    first = await current(shopper, subscription_id)
    assert first["status"] == "ACTIVE"
    assert sorted(i["status"] for i in first["invoices"] if i["billingReason"] == "subscription_cycle") == [
        "PAID",
        "PAID",
    ]
    await deliver(emulator, server, events)
    await deliver(emulator, server, events[::-1])
    await settle(services)
    assert state_of(await current(shopper, subscription_id)) == state_of(first)
    subscription = await Subscription.get(id=subscription_id)
    payments = await Payment.filter(order__customer_id=subscription.customer_id)
    assert len(payments) == 2 and all(p.amount_captured == 800 for p in payments)
    for payment in payments:
        assert await PaymentEvent.filter(payment_id=payment.id, type="CAPTURED").count() == 1
    await assert_balanced(subscription_id)


@pytest.mark.parametrize("outcome", ["failed", "denied"])
async def test_a_failed_cycle_is_past_due_and_dunned(
    outcome: str,
    paypal_in_payql: PayPalGateway,
    emulator: PayPalEmulator,
    shopper: Shopper,
    services: Services,
    mail_server: SmtpServer,
) -> None:
    price = await recurring_price(1_500)
    subscription_id, reference = await approved_and_active(emulator, services, shopper, price)

    await at_emulator(emulator, f"/emulator/subscriptions/{reference}/bill?outcome={outcome}")
    past_due = await wait_for_status(services, shopper, subscription_id, "PAST_DUE")
    assert past_due["failedAttempts"] == 1 and past_due["nextRetryAt"] is not None
    owing = [i for i in past_due["invoices"] if i["status"] == "OPEN"]
    assert len(owing) == 1 and owing[0]["amountDue"]["amount"] == 1_500 and owing[0]["declineCode"]
    assert await has_access(shopper, price)  # within the grace period

    async def emailed() -> bool:
        subjects = [str(m["Subject"]) for m in mail_server.messages_to(email_of(shopper.subject))]
        return any(subject.startswith("Payment failed") for subject in subjects)

    await eventually(emailed)
    await assert_balanced(subscription_id)

    # PayPal has no test clock: the first retry is made due, as a day passing would.
    await Subscription.filter(id=subscription_id).update(next_retry_at=int(time.time()) - 1)
    await services.jobs.dunning()
    await emulator.drain()
    recovered = await wait_for_status(services, shopper, subscription_id, "ACTIVE")
    assert (recovered["failedAttempts"], recovered["nextRetryAt"]) == (0, None)
    assert emulator.billing.subscriptions[reference].outstanding == 0
    # The collected sale pays the invoice of the failed cycle: no second invoice for the same money.
    assert [i["status"] for i in recovered["invoices"] if i["billingReason"] == "subscription_cycle"] == ["PAID"] * 2
    collected = [s for s in emulator.billing.sales.values() if s.state == "completed"]
    assert len(collected) == 2  # the first cycle and the balance dunning collected
    for sale in collected:
        payment = await Payment.get(gateway="paypal", gateway_reference=f"paypal_sale:{sale.id}")
        assert (payment.status, payment.amount_captured) == ("PAID", 1_500)
        assert await PaymentEvent.filter(payment_id=payment.id, type="CAPTURED").count() == 1
    await assert_balanced(subscription_id)
