"""Razorpay subscriptions through PayQL end to end, on the running server with signed webhooks reaching
`/webhooks/razorpay`: createSubscription answers INCOMPLETE with the subscription id for Checkout; the shopper
authenticates it on the emulator and Razorpay charges the first cycle; subscription.activated/charged and
invoice.paid leave the mirror ACTIVE with a PAID cycle invoice whose payment is captured; a renewal is charged;
pause and resume; a failed renewal makes it PAST_DUE; cancel at the period end keeps access until then.
"""

from __future__ import annotations

from typing import Any

import httpx

from db.models import Invoice, Payment, Price
from gateways.razorpay.adapter import RazorpayGateway
from payql.wiring import Services
from tests.features.subscriptions.kit import CANCEL, CREATE, PAUSE, RESUME, current, has_access, recurring_price
from tests.razorpay_emulator import RazorpayEmulator
from tests.testkit import Shopper, eventually, new_key, settle


async def subscribe(shopper: Shopper, price: Price) -> dict[str, Any]:
    variables = {
        "input": {
            "priceId": str(price.id),
            "gateway": "razorpay",
            "paymentMethod": "razorpay",
            "idempotencyKey": new_key(),
        }
    }
    payload: dict[str, Any] = (await shopper.data(CREATE, variables))["createSubscription"]
    assert payload["userErrors"] == []
    return payload


async def at_emulator(emulator: RazorpayEmulator, path: str, body: dict[str, Any] | None = None) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{emulator.base_url}{path}", json=body or {})
    assert response.status_code == 200, response.text


async def wait_for_status(services: Services, shopper: Shopper, subscription_id: str, status: str) -> dict[str, Any]:
    async def reached() -> bool:
        await settle(services)
        return bool((await current(shopper, subscription_id))["status"] == status)

    await eventually(reached)
    return await current(shopper, subscription_id)


async def paid_cycles(subscription_id: str) -> list[Invoice]:
    return await Invoice.filter(subscription_id=subscription_id, billing_reason="subscription_cycle", status="PAID")


async def test_authenticate_bill_renew_pause_resume_fail_and_cancel(
    razorpay_in_payql: RazorpayGateway,
    emulator: RazorpayEmulator,
    shopper: Shopper,
    admin: Shopper,
    services: Services,
) -> None:
    price = await recurring_price(1_250, currency="INR")
    created = await subscribe(shopper, price)
    subscription_id = created["subscription"]["id"]
    reference = created["subscription"]["gatewayReference"]
    assert created["subscription"]["status"] == "INCOMPLETE"
    assert created["nextAction"] == {"type": "CONFIRM_WITH_SDK", "redirectUrl": None, "clientSecret": reference}
    at_razorpay = emulator.billing.subscriptions[reference]
    plan = emulator.billing.plans[at_razorpay["plan_id"]]
    assert (plan["period"], plan["interval"], plan["item"]["amount"]) == ("monthly", 1, 1_250)
    assert at_razorpay["notes"]["payql_subscription_id"] == subscription_id
    assert not await has_access(shopper, price)

    await at_emulator(emulator, f"/emulator/subscriptions/{reference}/authenticate")  # the shopper, in Checkout
    active = await wait_for_status(services, shopper, subscription_id, "ACTIVE")
    assert active["currentPeriodEnd"] and await has_access(shopper, price)

    async def cycles_paid(count: int) -> None:
        async def reached() -> bool:
            await emulator.drain()
            await settle(services)
            return len(await paid_cycles(subscription_id)) == count

        await eventually(reached)

    await cycles_paid(1)
    [first] = await paid_cycles(subscription_id)
    payment = await Payment.get(order_id=first.order_id)
    assert (payment.status, payment.amount_captured) == ("PAID", 1_250)

    await at_emulator(emulator, f"/emulator/subscriptions/{reference}/charge")  # the renewal
    await cycles_paid(2)

    paused = await shopper.data(PAUSE, {"input": {"subscriptionId": subscription_id, "idempotencyKey": new_key()}})
    assert paused["pauseSubscription"]["userErrors"] == []
    await wait_for_status(services, shopper, subscription_id, "PAUSED")
    assert emulator.billing.subscriptions[reference]["status"] == "paused"
    resumed = await shopper.data(RESUME, {"input": {"subscriptionId": subscription_id, "idempotencyKey": new_key()}})
    assert resumed["resumeSubscription"]["userErrors"] == []
    await wait_for_status(services, shopper, subscription_id, "ACTIVE")

    await at_emulator(emulator, f"/emulator/subscriptions/{reference}/charge", {"decline_reason": "insufficient_funds"})
    past_due = await wait_for_status(services, shopper, subscription_id, "PAST_DUE")
    assert past_due["status"] == "PAST_DUE"
    await at_emulator(emulator, f"/emulator/subscriptions/{reference}/charge")  # Razorpay's own retry succeeds
    await wait_for_status(services, shopper, subscription_id, "ACTIVE")

    variables = {"input": {"subscriptionId": subscription_id, "atPeriodEnd": True, "idempotencyKey": new_key()}}
    canceled = (await shopper.data(CANCEL, variables))["cancelSubscription"]
    assert canceled["userErrors"] == [], canceled
    assert (
        emulator.billing.subscriptions[reference]["end_at"] == emulator.billing.subscriptions[reference]["current_end"]
    )
    after = await current(shopper, subscription_id)
    assert after["status"] == "ACTIVE" and after["cancelAtPeriodEnd"] is True
    assert await has_access(shopper, price)
