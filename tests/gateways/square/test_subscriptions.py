"""Square billing through the adapter, the `squareup` SDK over HTTP against the emulator: a price becomes a Catalog
plan and variation once; a subscription is a Square customer, a card on file and CreateSubscription, billed as an
invoice charged to the card; renewals, a declined renewal and its retry, a plan swap at the next billing date, a
cancel at the period end, a trial; and what Square cannot do refused with NotSupported."""

from __future__ import annotations

import uuid

import pytest

from domain.money import Money
from domain.statuses import InvoiceStatus, SubscriptionStatus
from gateways.errors import NotSupported, PaymentDeclined
from gateways.square.adapter import SquareGateway
from gateways.square.billing_transformers import epoch, step, today
from gateways.types import (
    InvoiceObserved,
    PlanChangeRequest,
    PlanPrice,
    ProrationMode,
    SubscriptionObserved,
    SubscriptionRequest,
    UsageReport,
    WebhookDelivery,
)
from tests.gateways.square.conftest import NONCE_DECLINED, NONCE_OK, make_gateway
from tests.square_emulator import SquareEmulator


def price(amount: int = 1_500, *, price_id: str | None = None, interval: str = "MONTH", count: int = 1) -> PlanPrice:
    return PlanPrice(
        price_id=price_id or str(uuid.uuid4()),
        product_id="prod",
        product_name="Square plan",
        unit_amount=Money(amount, "USD"),
        interval=interval,
        interval_count=count,
    )


def request(
    plan: PlanPrice, *, token: str = NONCE_OK, trial_days: int = 0, key: str | None = None
) -> SubscriptionRequest:
    return SubscriptionRequest(
        payql_subscription_id=str(uuid.uuid4()),
        customer_id=str(uuid.uuid4()),
        customer_email="shopper@example.com",
        price=plan,
        payment_method=token,
        idempotency_key=key or f"sub-{uuid.uuid4().hex}",
        trial_days=trial_days,
    )


async def test_a_subscription_is_active_with_its_first_invoice_paid(
    gateway: SquareGateway, emulator: SquareEmulator
) -> None:
    plan = price(1_500)
    created = await gateway.create_subscription(request(plan))
    assert (created.status, created.price_id, created.gateway_status) == (
        SubscriptionStatus.ACTIVE,
        plan.price_id,
        "ACTIVE",
    )
    assert created.current_period_start == epoch(today())
    assert created.current_period_end == epoch(step(today(), "MONTHLY", 1))
    invoice = created.latest_invoice
    assert invoice is not None
    assert (invoice.status, invoice.amount_due, invoice.amount_paid, invoice.billing_reason) == (
        InvoiceStatus.PAID,
        Money(1_500, "USD"),
        1_500,
        "subscription_create",
    )
    assert invoice.payment_reference is not None and invoice.attempt_count == 1
    payment = await gateway.retrieve(invoice.payment_reference)
    assert (payment.amount_captured, payment.amount.amount) == (1_500, 1_500)
    square = emulator.billing.subscriptions[created.reference]
    assert square.card_id is not None and square.card_id.startswith("ccof:")
    assert emulator.billing.customers[square.customer_id].reference_id is not None
    assert await gateway.retrieve_invoice(invoice.reference) == invoice

    # The same price again reuses its plan variation (found by name); a subscription per customer.
    again = await gateway.create_subscription(request(plan))
    assert again.reference != created.reference
    variations = [o for o in emulator.billing.catalog.values() if o.type == "SUBSCRIPTION_PLAN_VARIATION"]
    assert len(variations) == 1


async def test_a_new_gateway_finds_the_variation_it_made_before(
    gateway: SquareGateway, emulator: SquareEmulator
) -> None:
    plan = price(2_000)
    await gateway.create_subscription(request(plan))
    fresh = make_gateway(emulator)
    try:
        created = await fresh.create_subscription(request(plan))
    finally:
        await fresh.aclose()
    assert created.price_id == plan.price_id
    assert len([o for o in emulator.billing.catalog.values() if o.type == "SUBSCRIPTION_PLAN_VARIATION"]) == 1


async def test_a_retried_create_makes_one_subscription(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    asked = request(price())
    first = await gateway.create_subscription(asked)
    second = await gateway.create_subscription(asked)
    assert second.reference == first.reference
    assert len(emulator.billing.subscriptions) == 1 and len(emulator.billing.cards) == 1


async def test_a_declined_card_makes_no_subscription(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    with pytest.raises(PaymentDeclined) as declined:
        await gateway.create_subscription(request(price(), token=NONCE_DECLINED))
    assert declined.value.decline_code == "generic_decline"
    assert emulator.billing.subscriptions == {} and emulator.billing.cards == {}


async def test_a_declined_renewal_is_past_due_until_the_retry_pays_it(
    gateway: SquareGateway, emulator: SquareEmulator
) -> None:
    created = await gateway.create_subscription(request(price(1_500)))
    emulator.decline_next("INSUFFICIENT_FUNDS")
    emulator.billing.renew(created.reference)
    owing = await gateway.retrieve_subscription(created.reference)
    invoice = owing.latest_invoice
    assert owing.status is SubscriptionStatus.PAST_DUE
    assert invoice is not None and invoice.reference != (created.latest_invoice and created.latest_invoice.reference)
    assert (invoice.status, invoice.billing_reason, invoice.attempt_count, invoice.decline_code) == (
        InvoiceStatus.OPEN,
        "subscription_cycle",
        1,
        "insufficient_funds",
    )
    assert invoice.period_start == created.current_period_end

    emulator.decline_next()
    retried = await gateway.pay_invoice(invoice.reference, idempotency_key="dunning-1")
    assert (retried.status, retried.attempt_count, retried.decline_code) == (InvoiceStatus.OPEN, 2, "generic_decline")
    paid = await gateway.pay_invoice(invoice.reference, idempotency_key="dunning-2")
    assert (paid.status, paid.attempt_count, paid.amount_paid) == (InvoiceStatus.PAID, 3, 1_500)
    assert paid.payment_reference is not None
    assert (await gateway.pay_invoice(invoice.reference, idempotency_key="dunning-3")) == paid  # nothing owed
    assert (await gateway.retrieve_subscription(created.reference)).status is SubscriptionStatus.ACTIVE


async def test_a_plan_change_applies_from_the_next_billing_date(
    gateway: SquareGateway, emulator: SquareEmulator
) -> None:
    basic, pro = price(1_000), price(3_000)
    created = await gateway.create_subscription(request(basic))
    with pytest.raises(NotSupported):
        await gateway.change_plan(PlanChangeRequest(created.reference, pro, ProrationMode.IMMEDIATE, "chg-0"))
    preview = await gateway.preview_plan_change(created.reference, pro)
    assert (preview.amount_due_now, preview.next_invoice_amount, preview.next_invoice_at) == (
        Money(0, "USD"),
        Money(3_000, "USD"),
        created.current_period_end,
    )
    changed = await gateway.change_plan(PlanChangeRequest(created.reference, pro, ProrationMode.AT_PERIOD_END, "chg-1"))
    assert (changed.price_id, changed.pending_price_id) == (basic.price_id, pro.price_id)
    emulator.billing.renew(created.reference)
    renewed = await gateway.retrieve_subscription(created.reference)
    assert (renewed.price_id, renewed.pending_price_id) == (pro.price_id, None)
    assert renewed.latest_invoice is not None and renewed.latest_invoice.amount_paid == 3_000


async def test_cancel_at_the_period_end_and_never_at_once(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    created = await gateway.create_subscription(request(price()))
    with pytest.raises(NotSupported):
        await gateway.cancel_subscription(created.reference, at_period_end=False, idempotency_key="c-0")
    ending = await gateway.cancel_subscription(created.reference, at_period_end=True, idempotency_key="c-1")
    assert (ending.status, ending.cancel_at_period_end) == (SubscriptionStatus.ACTIVE, True)
    repeat = await gateway.cancel_subscription(created.reference, at_period_end=True, idempotency_key="c-1")
    assert repeat == ending
    emulator.billing.renew(created.reference)
    ended = await gateway.retrieve_subscription(created.reference)
    assert (ended.status, ended.ended_at) == (SubscriptionStatus.CANCELED, created.current_period_end)
    assert len(emulator.billing.subscriptions[created.reference].invoice_ids) == 1  # nothing billed after


async def test_a_trial_starts_later_and_bills_then(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    created = await gateway.create_subscription(request(price(), trial_days=14))
    trial_end = epoch(step(today(), "DAILY", 14))
    assert (created.status, created.trial_end, created.current_period_end) == (
        SubscriptionStatus.TRIALING,
        trial_end,
        trial_end,
    )
    assert created.latest_invoice is None
    emulator.billing.renew(created.reference)
    started = await gateway.retrieve_subscription(created.reference)
    assert started.status is SubscriptionStatus.ACTIVE
    assert started.latest_invoice is not None and started.latest_invoice.status is InvoiceStatus.PAID


async def test_a_new_card_on_file(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    created = await gateway.create_subscription(request(price()))
    updated = await gateway.update_default_payment_method(created.reference, NONCE_OK, idempotency_key="card-2")
    assert updated.default_payment_method not in (None, created.default_payment_method)
    assert emulator.billing.subscriptions[created.reference].card_id == updated.default_payment_method


async def test_what_square_cannot_bill_is_not_supported(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    with pytest.raises(NotSupported):
        await gateway.create_subscription(request(price(interval="MONTH", count=5)))
    metered = PlanPrice("p-metered", "prod", "Metered", Money(10, "USD"), "MONTH", metered=True)
    with pytest.raises(NotSupported):
        await gateway.create_subscription(request(metered))
    assert emulator.calls.requests == []
    with pytest.raises(NotSupported):
        await gateway.pause_subscription("sub", idempotency_key="p")
    with pytest.raises(NotSupported):
        await gateway.resume_subscription("sub", idempotency_key="r")
    with pytest.raises(NotSupported):
        await gateway.report_usage(UsageReport("sub", "p-metered", 3, 0, "u"))


async def test_subscription_and_invoice_events_are_mapped(gateway: SquareGateway, emulator: SquareEmulator) -> None:
    created = await gateway.create_subscription(request(price(1_500)))
    emulator.decline_next()
    emulator.billing.renew(created.reference)
    seen: list[object] = []
    for event in emulator.events:
        delivery = emulator.sign(event, notification_url="https://pay.example.test/webhooks/square")
        verified = await gateway.verify_webhook(WebhookDelivery(delivery.headers, delivery.body, 0))
        seen.extend(gateway.interpret_event(verified))
    subscriptions = {e.result.reference for e in seen if isinstance(e, SubscriptionObserved)}
    invoices = [(e.event, e.result.status) for e in seen if isinstance(e, InvoiceObserved)]
    assert subscriptions == {created.reference}
    assert all(e.stale_possible for e in seen if isinstance(e, SubscriptionObserved | InvoiceObserved))
    assert invoices == [
        ("finalized", InvoiceStatus.OPEN),
        ("paid", InvoiceStatus.PAID),
        ("finalized", InvoiceStatus.OPEN),
        ("payment_failed", InvoiceStatus.OPEN),
    ]
