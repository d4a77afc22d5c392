"""The Razorpay billing verbs on the emulator: plans made once per price, the authentication invoice, a trial,
cycle invoices, plan changes from the next cycle, cancel/pause/resume (repeats answered with the state read),
what Razorpay cannot do, and subscription events."""

from __future__ import annotations

import pytest

from domain.money import Money
from domain.statuses import InvoiceStatus, NextActionType, SubscriptionStatus
from gateways.errors import NotSupported
from gateways.razorpay.adapter import RazorpayGateway
from gateways.types import (
    InvoiceObserved,
    PlanChangeRequest,
    PlanPrice,
    ProrationMode,
    SubscriptionObserved,
    SubscriptionRequest,
    UsageReport,
)
from tests.gateways.razorpay.test_webhooks import events_of, verified
from tests.razorpay_emulator import RazorpayEmulator


def price(price_id: str = "price_basic", amount: int = 2_000, *, metered: bool = False) -> PlanPrice:
    return PlanPrice(price_id, "prod_app", f"App {price_id}", Money(amount, "INR"), "MONTH", metered=metered)


def request(key: str = "sub-1", *, plan: PlanPrice | None = None, trial_days: int = 0) -> SubscriptionRequest:
    return SubscriptionRequest(
        payql_subscription_id=f"psub-{key}",
        customer_id="cust_1",
        customer_email="shopper@example.com",
        price=plan or price(),
        payment_method="razorpay",
        idempotency_key=key,
        trial_days=trial_days,
    )


async def test_a_subscription_waits_for_authentication_then_bills(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    created = await gateway.create_subscription(request())
    assert (created.status, created.price_id, created.payql_subscription_id) == (
        SubscriptionStatus.INCOMPLETE,
        "price_basic",
        "psub-sub-1",
    )
    auth = created.latest_invoice
    assert auth is not None and auth.status is InvoiceStatus.OPEN and auth.amount_due == Money(2_000, "INR")
    assert auth.next_action is not None and auth.next_action.type is NextActionType.CONFIRM_WITH_SDK
    assert auth.next_action.client_secret == created.reference
    again = await gateway.create_subscription(request("sub-2"))
    assert len(emulator.billing.plans) == 1 and again.reference != created.reference  # one plan per price

    emulator.billing.authenticate(created.reference)
    active = await gateway.retrieve_subscription(created.reference)
    assert active.status is SubscriptionStatus.ACTIVE and active.current_period_end
    assert active.latest_invoice is not None and active.latest_invoice.status is InvoiceStatus.VOID
    assert (await gateway.retrieve_invoice(auth.reference)).status is InvoiceStatus.VOID
    [cycle] = emulator.billing.invoices.values()
    read = await gateway.retrieve_invoice(cycle["id"])
    assert (read.status, read.amount_paid, read.payment_reference) == (InvoiceStatus.PAID, 2_000, cycle["order_id"])
    assert (await gateway.retrieve(cycle["order_id"])).amount_captured == 2_000


async def test_a_trial_is_authenticated_until_its_start(gateway: RazorpayGateway, emulator: RazorpayEmulator) -> None:
    created = await gateway.create_subscription(request(trial_days=14))
    assert created.latest_invoice is not None and created.latest_invoice.amount_due == Money(0, "INR")
    emulator.billing.authenticate(created.reference)
    trialing = await gateway.retrieve_subscription(created.reference)
    assert trialing.status is SubscriptionStatus.TRIALING and trialing.trial_end


async def test_a_failed_cycle_is_past_due_with_its_decline(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    created = await gateway.create_subscription(request())
    emulator.billing.authenticate(created.reference)
    emulator.billing.charge(created.reference, decline_reason="insufficient_funds")
    past_due = await gateway.retrieve_subscription(created.reference)
    assert past_due.status is SubscriptionStatus.PAST_DUE
    latest = past_due.latest_invoice
    assert latest is not None and latest.status is InvoiceStatus.OPEN and latest.decline_code == "insufficient_funds"
    with pytest.raises(NotSupported):
        await gateway.pay_invoice(latest.reference, idempotency_key="pay-1")


async def test_a_plan_change_applies_from_the_next_cycle(gateway: RazorpayGateway, emulator: RazorpayEmulator) -> None:
    created = await gateway.create_subscription(request())
    emulator.billing.authenticate(created.reference)
    with pytest.raises(NotSupported):
        await gateway.change_plan(
            PlanChangeRequest(created.reference, price("price_pro", 5_000), ProrationMode.IMMEDIATE, "c-1")
        )
    preview = await gateway.preview_plan_change(created.reference, price("price_pro", 5_000))
    assert preview.amount_due_now == Money(0, "INR") and preview.next_invoice_amount == Money(5_000, "INR")
    changed = await gateway.change_plan(
        PlanChangeRequest(created.reference, price("price_pro", 5_000), ProrationMode.AT_PERIOD_END, "c-2")
    )
    assert (changed.price_id, changed.pending_price_id) == ("price_basic", "price_pro")


async def test_cancel_pause_resume_and_their_repeats(gateway: RazorpayGateway, emulator: RazorpayEmulator) -> None:
    created = await gateway.create_subscription(request())
    emulator.billing.authenticate(created.reference)
    assert (
        await gateway.pause_subscription(created.reference, idempotency_key="p")
    ).status is SubscriptionStatus.PAUSED
    assert (
        await gateway.pause_subscription(created.reference, idempotency_key="p")
    ).status is SubscriptionStatus.PAUSED
    assert (
        await gateway.resume_subscription(created.reference, idempotency_key="r")
    ).status is SubscriptionStatus.ACTIVE
    at_end = await gateway.cancel_subscription(created.reference, at_period_end=True, idempotency_key="c")
    assert at_end.status is SubscriptionStatus.ACTIVE and at_end.cancel_at_period_end
    now = await gateway.cancel_subscription(created.reference, at_period_end=False, idempotency_key="c2")
    assert now.status is SubscriptionStatus.CANCELED and now.canceled_at
    again = await gateway.cancel_subscription(created.reference, at_period_end=False, idempotency_key="c2")
    assert again.status is SubscriptionStatus.CANCELED


async def test_what_razorpay_cannot_do(gateway: RazorpayGateway) -> None:
    with pytest.raises(NotSupported):
        await gateway.create_subscription(request(plan=price(metered=True)))
    with pytest.raises(NotSupported):
        await gateway.report_usage(UsageReport("sub_x", "price_basic", 3, 0, "u-1"))
    with pytest.raises(NotSupported):
        await gateway.update_default_payment_method("sub_x", "razorpay", idempotency_key="m-1")


async def test_subscription_events_name_the_subscription_and_the_paid_cycle(
    gateway: RazorpayGateway, emulator: RazorpayEmulator
) -> None:
    created = await gateway.create_subscription(request())
    emulator.billing.authenticate(created.reference)
    [activated] = events_of(emulator, "subscription.activated")
    [effect] = gateway.interpret_event(await verified(gateway, emulator, activated))
    assert isinstance(effect, SubscriptionObserved) and effect.stale_possible
    assert (effect.result.reference, effect.result.payql_subscription_id) == (created.reference, "psub-sub-1")
    [charged] = events_of(emulator, "subscription.charged")
    sub_effect, invoice_effect = gateway.interpret_event(await verified(gateway, emulator, charged))
    assert isinstance(sub_effect, SubscriptionObserved) and isinstance(invoice_effect, InvoiceObserved)
    [cycle] = emulator.billing.invoices.values()
    assert (invoice_effect.event, invoice_effect.result.reference) == ("paid", cycle["id"])
    assert invoice_effect.result.subscription_reference == created.reference
    [paid] = events_of(emulator, "invoice.paid")
    [effect] = gateway.interpret_event(await verified(gateway, emulator, paid))
    assert isinstance(effect, InvoiceObserved) and effect.result.payment_reference == cycle["order_id"]
