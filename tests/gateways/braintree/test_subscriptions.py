"""Braintree subscriptions through the adapter on the emulator: plans referenced by id, our ids as Braintree's (so a
repeated create finds the first), trials, Braintree's proration on a plan change, cancel now or at the period end,
a failed cycle owed and paid again with a new card, and what Braintree cannot do."""

from __future__ import annotations

import uuid

import httpx
import pytest
from braintree.test.nonces import Nonces

from domain.money import Money
from domain.statuses import InvoiceStatus, SubscriptionStatus
from gateways.braintree.adapter import BraintreeGateway
from gateways.errors import GatewayUnavailable, InvalidGatewayRequest, NotSupported, PaymentDeclined
from gateways.types import PlanChangeRequest, PlanPrice, ProrationMode, SubscriptionRequest, UsageReport
from tests.braintree_emulator import BraintreeEmulator
from tests.gateways.braintree.conftest import make_gateway

BASIC = PlanPrice("price_basic", "prod_1", "Lamp club", Money(1000, "USD"), "MONTH")
PRO = PlanPrice("price_pro", "prod_1", "Lamp club", Money(3000, "USD"), "MONTH")


@pytest.fixture
async def billing(emulator: BraintreeEmulator) -> BraintreeGateway:
    gateway = make_gateway(emulator, plans={"price_basic": "basic_monthly", "price_pro": "pro_monthly"})
    yield gateway  # type: ignore[misc]
    await gateway.aclose()


def subscribing(price: PlanPrice = BASIC, nonce: str = Nonces.Transactable, trial_days: int = 0) -> SubscriptionRequest:
    subscription_id = str(uuid.uuid4())
    return SubscriptionRequest(
        payql_subscription_id=subscription_id,
        customer_id=str(uuid.uuid4()),
        customer_email="ada@example.test",
        price=price,
        payment_method=nonce,
        idempotency_key=f"subscription-{subscription_id}",
        trial_days=trial_days,
    )


async def cycle(emulator: BraintreeEmulator, reference: str, *, decline: bool = False) -> None:
    async with httpx.AsyncClient() as client:
        query = "?decline=1" if decline else ""
        response = await client.post(f"{emulator.base_url}/emulator/subscriptions/{reference}/cycle{query}")
    assert response.status_code == 200, response.text


async def test_a_subscription_is_created_on_its_plan_and_charged(
    billing: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    request = subscribing()
    created = await billing.create_subscription(request)
    assert (created.reference, created.payql_subscription_id) == (request.payql_subscription_id,) * 2
    assert (created.status, created.price_id, created.customer_reference) == (
        SubscriptionStatus.ACTIVE,
        "price_basic",
        request.customer_id,
    )
    invoice = created.latest_invoice
    assert invoice is not None and invoice.status is InvoiceStatus.PAID and invoice.amount_paid == 1000
    assert invoice.billing_reason == "subscription_create" and invoice.payment_reference
    assert created.current_period_start and created.current_period_end
    at_braintree = emulator.billing.subscriptions[created.reference]
    assert (at_braintree["plan_id"], at_braintree["price"]) == ("basic_monthly", "10.00")
    assert await billing.retrieve_invoice(invoice.reference) == invoice
    assert (await billing.retrieve_subscription(created.reference)).status is SubscriptionStatus.ACTIVE


async def test_a_repeated_create_finds_the_first(billing: BraintreeGateway, emulator: BraintreeEmulator) -> None:
    request = subscribing()
    first = await billing.create_subscription(request)
    again = await billing.create_subscription(request)
    assert again.reference == first.reference
    assert len(emulator.billing.subscriptions) == 1
    assert len(emulator.billing.subscriptions[first.reference]["transactions"]) == 1


async def test_a_trial_charges_nothing_until_it_ends(billing: BraintreeGateway, emulator: BraintreeEmulator) -> None:
    trialing = await billing.create_subscription(subscribing(trial_days=14))
    assert (trialing.status, trialing.latest_invoice) == (SubscriptionStatus.TRIALING, None)
    assert trialing.trial_end is not None and trialing.current_period_end == trialing.trial_end
    await cycle(emulator, trialing.reference)
    after = await billing.retrieve_subscription(trialing.reference)
    assert after.status is SubscriptionStatus.ACTIVE
    assert after.latest_invoice is not None and after.latest_invoice.status is InvoiceStatus.PAID


async def test_a_declined_first_charge_makes_no_subscription(
    billing: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    with pytest.raises(PaymentDeclined) as caught:
        await billing.create_subscription(subscribing(nonce=Nonces.ProcessorDeclinedVisa))
    assert caught.value.decline_code == "generic_decline"
    assert emulator.billing.subscriptions == {}


async def test_an_upgrade_is_prorated_now(billing: BraintreeGateway, emulator: BraintreeEmulator) -> None:
    created = await billing.create_subscription(subscribing())
    preview = await billing.preview_plan_change(created.reference, PRO)
    assert 1_800 <= preview.amount_due_now.amount <= 2_000  # the rest of the month at the 20.00 difference
    changed = await billing.change_plan(PlanChangeRequest(created.reference, PRO, ProrationMode.IMMEDIATE, "chg"))
    assert changed.price_id == "price_pro"
    charges = emulator.billing.subscriptions[created.reference]["transactions"]
    assert [c["amount"] for c in charges] == ["20.00", "10.00"]
    assert changed.latest_invoice is not None and changed.latest_invoice.amount_paid == 2_000


async def test_a_change_without_proration_charges_nothing_now(
    billing: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    created = await billing.create_subscription(subscribing())
    changed = await billing.change_plan(PlanChangeRequest(created.reference, PRO, ProrationMode.NONE, "chg"))
    assert changed.price_id == "price_pro"
    assert len(emulator.billing.subscriptions[created.reference]["transactions"]) == 1
    with pytest.raises(NotSupported):
        await billing.change_plan(PlanChangeRequest(created.reference, BASIC, ProrationMode.AT_PERIOD_END, "chg2"))


async def test_cancel_at_the_period_end_expires_when_the_paid_period_ends(
    billing: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    created = await billing.create_subscription(subscribing())
    ending = await billing.cancel_subscription(created.reference, at_period_end=True, idempotency_key="c")
    assert (ending.status, ending.cancel_at_period_end) == (SubscriptionStatus.ACTIVE, True)
    await cycle(emulator, created.reference)
    ended = await billing.retrieve_subscription(created.reference)
    assert (ended.status, ended.ended_at is not None) == (SubscriptionStatus.CANCELED, True)
    assert len(emulator.billing.subscriptions[created.reference]["transactions"]) == 1


async def test_cancel_now_and_again(billing: BraintreeGateway) -> None:
    created = await billing.create_subscription(subscribing())
    canceled = await billing.cancel_subscription(created.reference, at_period_end=False, idempotency_key="c")
    again = await billing.cancel_subscription(created.reference, at_period_end=False, idempotency_key="c")
    assert canceled.status is again.status is SubscriptionStatus.CANCELED


async def test_a_failed_cycle_is_owed_and_paid_with_a_new_card(
    billing: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    created = await billing.create_subscription(subscribing())
    await cycle(emulator, created.reference, decline=True)
    past_due = await billing.retrieve_subscription(created.reference)
    owed = past_due.latest_invoice
    assert past_due.status is SubscriptionStatus.PAST_DUE
    assert owed is not None and (owed.status, owed.decline_code) == (InvoiceStatus.OPEN, "generic_decline")
    assert owed.billing_reason == "subscription_cycle"
    updated = await billing.update_default_payment_method(
        created.reference, Nonces.TransactableMasterCard, idempotency_key="pm"
    )
    assert updated.default_payment_method != created.default_payment_method
    paid = await billing.pay_invoice(owed.reference, idempotency_key="pay")
    assert (paid.reference, paid.status, paid.amount_paid) == (owed.reference, InvoiceStatus.PAID, 1000)
    assert (await billing.retrieve_subscription(created.reference)).status is SubscriptionStatus.ACTIVE


async def test_what_braintree_cannot_do(billing: BraintreeGateway) -> None:
    created = await billing.create_subscription(subscribing())
    with pytest.raises(NotSupported):
        await billing.pause_subscription(created.reference, idempotency_key="p")
    with pytest.raises(NotSupported):
        await billing.resume_subscription(created.reference, idempotency_key="r")
    with pytest.raises(NotSupported):
        await billing.report_usage(UsageReport(created.reference, "price_basic", 3, 0, "u"))
    weekly = PlanPrice("price_weekly", "prod_1", "Lamp club", Money(300, "USD"), "WEEK")
    with pytest.raises(NotSupported):
        await billing.create_subscription(subscribing(price=weekly))


async def test_a_retry_whose_answer_was_lost_is_not_charged_again(
    billing: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    created = await billing.create_subscription(subscribing())
    await cycle(emulator, created.reference, decline=True)
    owed = (await billing.retrieve_subscription(created.reference)).latest_invoice
    assert owed is not None
    await billing.update_default_payment_method(created.reference, Nonces.Transactable, idempotency_key="pm")
    emulator.fail_next(500, path="/transactions", after_effect=True)
    with pytest.raises(GatewayUnavailable):
        await billing.pay_invoice(owed.reference, idempotency_key="pay")
    paid = await billing.pay_invoice(owed.reference, idempotency_key="pay")
    assert (paid.reference, paid.status) == (owed.reference, InvoiceStatus.PAID)
    charges = emulator.billing.subscriptions[created.reference]["transactions"]
    assert [c["status"] for c in charges] == [
        "submitted_for_settlement",
        "processor_declined",
        "submitted_for_settlement",
    ]


async def test_a_plan_on_another_schedule_or_unknown_is_refused(
    billing: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    yearly_on_monthly = PlanPrice("price_basic", "prod_1", "Lamp club", Money(10000, "USD"), "YEAR")
    with pytest.raises(InvalidGatewayRequest):
        await billing.create_subscription(subscribing(price=yearly_on_monthly))
    unmapped = PlanPrice("price_nobody", "prod_1", "Lamp club", Money(1000, "USD"), "MONTH")
    with pytest.raises(InvalidGatewayRequest):
        await billing.create_subscription(subscribing(price=unmapped))
    yearly = PlanPrice("basic_yearly", "prod_1", "Lamp club", Money(10000, "USD"), "YEAR")  # plan id = price id
    assert (await billing.create_subscription(subscribing(price=yearly))).status is SubscriptionStatus.ACTIVE
    assert emulator.billing.customers
