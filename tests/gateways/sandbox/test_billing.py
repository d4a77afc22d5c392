"""The sandbox billing engine through `SandboxGateway`'s `BillingGateway` verbs: the subscription
lifecycle on per-customer test clocks, collection outcomes, and the processor events it leaves."""

from __future__ import annotations

import pytest

from domain.money import Money
from domain.statuses import InvoiceStatus, NextActionType, PaymentStatus, SubscriptionStatus
from gateways.billing import BillingGateway
from gateways.errors import GatewayIdempotencyConflict, InvalidGatewayRequest
from gateways.sandbox import SandboxGateway
from gateways.sandbox.processor import SandboxProcessor
from gateways.sandbox.processor.errors import SandboxInvalidRequest
from gateways.sandbox.processor.objects import IntentStatus
from gateways.types import PlanChangeRequest, ProrationMode, UsageReport
from tests.gateways.billing_helpers import (
    DAY,
    JAN_1,
    at,
    data_object,
    events_of,
    frozen_processor,
    gateway_on,
    plan,
    subscription_request,
)


@pytest.fixture
def processor() -> SandboxProcessor:
    return frozen_processor()


@pytest.fixture
def gateway(processor: SandboxProcessor) -> SandboxGateway:
    return gateway_on(processor)


async def advance_to(gateway: SandboxGateway, reference: str, moment: int, customer: str = "cust_1") -> int:
    now = await gateway.billing_now(reference)
    return await gateway.advance_customer_clock(customer, moment - now)


def test_the_sandbox_gateway_is_a_billing_gateway(gateway: SandboxGateway) -> None:
    assert isinstance(gateway, BillingGateway)


async def test_trial_then_first_charge_then_three_renewals(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request(trial_days=14))
    trial_end = JAN_1 + 14 * DAY

    assert created.status is SubscriptionStatus.TRIALING
    assert created.trial_end == trial_end
    assert created.latest_invoice is None
    assert created.payql_subscription_id == "psub_1"
    assert await processor.list_payment_intents() == []

    await gateway.advance_customer_clock("cust_1", 11 * DAY - 1)
    assert await events_of(processor, "customer.subscription.trial_will_end") == []
    await gateway.advance_customer_clock("cust_1", 1)
    assert len(await events_of(processor, "customer.subscription.trial_will_end")) == 1

    await advance_to(gateway, created.reference, trial_end)
    first = await gateway.retrieve_subscription(created.reference)
    assert first.status is SubscriptionStatus.ACTIVE
    assert first.latest_invoice is not None
    assert first.latest_invoice.billing_reason == "subscription_cycle"
    assert first.latest_invoice.status is InvoiceStatus.PAID
    assert first.latest_invoice.amount_paid == 2000

    # Three renewals in one long jump: each period a calendar month from the trial's end (Jan 15).
    await advance_to(gateway, created.reference, at(2027, 4, 15))

    paid = [data_object(event) for event in await events_of(processor, "invoice.paid")]
    assert [(inv["amount_paid"], inv["period_start"], inv["period_end"]) for inv in paid] == [
        (2000, at(2027, 1, 15), at(2027, 2, 15)),
        (2000, at(2027, 2, 15), at(2027, 3, 15)),
        (2000, at(2027, 3, 15), at(2027, 4, 15)),
        (2000, at(2027, 4, 15), at(2027, 5, 15)),
    ]
    assert [inv["billing_reason"] for inv in paid] == ["subscription_cycle"] * 4
    renewed = await gateway.retrieve_subscription(created.reference)
    assert (renewed.current_period_start, renewed.current_period_end) == (at(2027, 4, 15), at(2027, 5, 15))
    assert renewed.updated > first.updated > created.updated
    intents = await processor.list_payment_intents()
    assert [intent.status for intent in intents] == [IntentStatus.SUCCEEDED] * 4
    assert {intent.invoice for intent in intents} == {inv["id"] for inv in paid}
    # invoice.upcoming three days before each renewal after the first period
    upcoming = [data_object(event) for event in await events_of(processor, "invoice.upcoming")]
    assert [inv["next_payment_attempt"] for inv in upcoming] == [at(2027, 2, 15), at(2027, 3, 15), at(2027, 4, 15)]


async def test_without_a_trial_the_first_invoice_is_charged_at_once(gateway: SandboxGateway) -> None:
    created = await gateway.create_subscription(subscription_request())

    assert created.status is SubscriptionStatus.ACTIVE
    assert created.current_period_start == JAN_1
    assert created.current_period_end == at(2027, 2, 1)
    invoice = created.latest_invoice
    assert invoice is not None
    assert invoice.billing_reason == "subscription_create"
    assert invoice.status is InvoiceStatus.PAID
    assert invoice.amount_due == Money(2000, "USD")
    assert invoice.payment_reference is not None
    payment = await gateway.retrieve(invoice.payment_reference)
    assert payment.status is PaymentStatus.PAID


async def test_a_declined_renewal_is_past_due_until_paid_with_a_new_card(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request())
    await gateway.update_default_payment_method(
        created.reference, "pm_card_chargeDeclinedInsufficientFunds", idempotency_key="pm-1"
    )

    await advance_to(gateway, created.reference, at(2027, 2, 1))

    past_due = await gateway.retrieve_subscription(created.reference)
    assert past_due.status is SubscriptionStatus.PAST_DUE
    invoice = past_due.latest_invoice
    assert invoice is not None
    assert invoice.status is InvoiceStatus.OPEN
    assert invoice.attempt_count == 1
    assert invoice.decline_code == "insufficient_funds"
    failed = await events_of(processor, "invoice.payment_failed")
    assert [data_object(event)["id"] for event in failed] == [invoice.reference]

    updated = await gateway.update_default_payment_method(created.reference, "pm_card_visa", idempotency_key="pm-2")
    assert updated.default_payment_method == "pm_card_visa"
    paid = await gateway.pay_invoice(invoice.reference, idempotency_key="dunning-1")

    assert paid.status is InvoiceStatus.PAID
    assert paid.attempt_count == 2
    assert paid.payment_reference == invoice.payment_reference  # the same intent, confirmed again
    assert (await gateway.retrieve_subscription(created.reference)).status is SubscriptionStatus.ACTIVE
    assert (await gateway.retrieve(paid.payment_reference or "")).status is PaymentStatus.PAID


async def test_a_saved_card_that_expires_on_the_customers_clock_is_declined(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    token = await processor.tokenize_card("4242424242424242", 1, 2027, "123")  # valid through January 2027
    created = await gateway.create_subscription(subscription_request(payment_method=token.id))
    assert created.status is SubscriptionStatus.ACTIVE

    await advance_to(gateway, created.reference, at(2027, 2, 1))

    renewed = await gateway.retrieve_subscription(created.reference)
    assert renewed.status is SubscriptionStatus.PAST_DUE
    assert renewed.latest_invoice is not None
    assert renewed.latest_invoice.decline_code == "expired_card"


async def test_a_renewal_needing_authentication_is_paid_once_the_customer_completes_it(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request())
    await gateway.update_default_payment_method(
        created.reference, "pm_card_authenticationRequired", idempotency_key="k"
    )

    await advance_to(gateway, created.reference, at(2027, 2, 1))

    waiting = await gateway.retrieve_subscription(created.reference)
    assert waiting.status is SubscriptionStatus.PAST_DUE
    invoice = waiting.latest_invoice
    assert invoice is not None and invoice.next_action is not None
    assert invoice.status is InvoiceStatus.OPEN
    assert invoice.next_action.type is NextActionType.REDIRECT
    assert invoice.payment_reference is not None
    assert invoice.next_action.redirect_url == f"http://payql.test/sandbox/authenticate/{invoice.payment_reference}"
    assert len(await events_of(processor, "invoice.payment_action_required")) == 1
    assert (await processor.retrieve(invoice.payment_reference)).status is IntentStatus.REQUIRES_ACTION

    await processor.complete_authentication(invoice.payment_reference, succeed=True)

    paid = await gateway.retrieve_invoice(invoice.reference)
    assert paid.status is InvoiceStatus.PAID
    assert paid.next_action is None
    assert (await gateway.retrieve_subscription(created.reference)).status is SubscriptionStatus.ACTIVE
    assert [data_object(e)["id"] for e in await events_of(processor, "invoice.paid")][-1] == invoice.reference


async def test_a_first_payment_needing_authentication_leaves_the_subscription_incomplete_until_done(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request(payment_method="pm_card_authenticationRequired"))

    assert created.status is SubscriptionStatus.INCOMPLETE
    invoice = created.latest_invoice
    assert invoice is not None and invoice.next_action is not None
    assert invoice.next_action.client_secret is not None
    assert invoice.payment_reference is not None

    await processor.complete_authentication(invoice.payment_reference, succeed=True)

    active = await gateway.retrieve_subscription(created.reference)
    assert active.status is SubscriptionStatus.ACTIVE
    assert active.latest_invoice is not None and active.latest_invoice.status is InvoiceStatus.PAID


async def test_a_failed_authentication_keeps_the_invoice_open(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request(payment_method="pm_card_authenticationRequired"))
    assert created.latest_invoice is not None and created.latest_invoice.payment_reference is not None

    await processor.complete_authentication(created.latest_invoice.payment_reference, succeed=False)

    still = await gateway.retrieve_subscription(created.reference)
    assert still.status is SubscriptionStatus.INCOMPLETE
    assert still.latest_invoice is not None
    assert still.latest_invoice.status is InvoiceStatus.OPEN
    assert still.latest_invoice.decline_code == "authentication_required"


async def test_an_authentication_after_the_first_invoice_expired_is_refused(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request(payment_method="pm_card_authenticationRequired"))
    assert created.latest_invoice is not None and created.latest_invoice.payment_reference is not None
    await processor.advance_clock(23 * 3600)  # time passed; nobody looked at the subscription meanwhile

    with pytest.raises(SandboxInvalidRequest):
        await processor.complete_authentication(created.latest_invoice.payment_reference, succeed=True)

    expired = await gateway.retrieve_subscription(created.reference)
    assert expired.status is SubscriptionStatus.INCOMPLETE_EXPIRED
    assert (await processor.retrieve(created.latest_invoice.payment_reference)).status is IntentStatus.CANCELED


async def test_a_declined_first_payment_is_incomplete_then_expires_after_23_hours(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request(payment_method="pm_card_chargeDeclined"))

    assert created.status is SubscriptionStatus.INCOMPLETE
    assert created.latest_invoice is not None
    assert created.latest_invoice.status is InvoiceStatus.OPEN
    assert created.latest_invoice.decline_code == "generic_decline"

    await gateway.advance_customer_clock("cust_1", 23 * 3600 - 1)
    assert (await gateway.retrieve_subscription(created.reference)).status is SubscriptionStatus.INCOMPLETE
    await gateway.advance_customer_clock("cust_1", 1)

    expired = await gateway.retrieve_subscription(created.reference)
    assert expired.status is SubscriptionStatus.INCOMPLETE_EXPIRED
    assert expired.ended_at == JAN_1 + 23 * 3600
    assert expired.latest_invoice is not None and expired.latest_invoice.status is InvoiceStatus.VOID
    # Nothing more happens to an expired subscription, however far the clock goes.
    await gateway.advance_customer_clock("cust_1", 90 * DAY)
    assert len(await events_of(processor, "invoice.created")) == 1


async def test_an_immediate_upgrade_mid_period_charges_exactly_the_preview(gateway: SandboxGateway) -> None:
    created = await gateway.create_subscription(subscription_request())
    await gateway.advance_customer_clock("cust_1", 10 * DAY)
    premium = plan("price_premium", 5000)

    preview = await gateway.preview_plan_change(created.reference, premium)
    changed = await gateway.change_plan(PlanChangeRequest(created.reference, premium, ProrationMode.IMMEDIATE, "up-1"))

    # (5000 - 2000) x 21 of 31 days = 2032.26, rounded to 2032
    assert preview.amount_due_now == Money(2032, "USD")
    assert preview.next_invoice_amount == Money(5000, "USD")
    assert preview.next_invoice_at == at(2027, 2, 1)
    assert changed.price_id == "price_premium"
    invoice = changed.latest_invoice
    assert invoice is not None
    assert invoice.billing_reason == "subscription_update"
    assert invoice.amount_due == preview.amount_due_now
    assert invoice.status is InvoiceStatus.PAID
    assert changed.status is SubscriptionStatus.ACTIVE
    assert changed.current_period_end == at(2027, 2, 1)  # the cycle is kept


async def test_an_immediate_downgrade_becomes_credit_on_the_next_invoice(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request(price=plan("price_premium", 5000)))
    await gateway.advance_customer_clock("cust_1", 10 * DAY)
    basic = plan("price_basic", 2000)

    preview = await gateway.preview_plan_change(created.reference, basic)
    changed = await gateway.change_plan(PlanChangeRequest(created.reference, basic, ProrationMode.IMMEDIATE, "down"))

    assert preview.amount_due_now == Money(-2032, "USD")
    assert preview.next_invoice_amount == Money(0, "USD")  # the credit covers the whole next invoice
    assert changed.latest_invoice is not None and changed.latest_invoice.billing_reason == "subscription_create"
    await advance_to(gateway, created.reference, at(2027, 2, 1))
    await advance_to(gateway, created.reference, at(2027, 3, 1))
    amounts = [data_object(e)["amount_due"] for e in await events_of(processor, "invoice.finalized")]
    # The 2032 credit pays February's 2000 whole, and 32 of March's.
    assert amounts == [5000, 0, 2000 - 32]


async def test_a_change_without_proration_switches_now_and_charges_nothing(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request())
    await gateway.advance_customer_clock("cust_1", 10 * DAY)

    changed = await gateway.change_plan(
        PlanChangeRequest(created.reference, plan("price_premium", 5000), ProrationMode.NONE, "none")
    )

    assert changed.price_id == "price_premium"
    assert len(await events_of(processor, "invoice.created")) == 1
    await advance_to(gateway, created.reference, at(2027, 2, 1))
    assert [data_object(e)["amount_due"] for e in await events_of(processor, "invoice.paid")] == [2000, 5000]


async def test_a_downgrade_at_period_end_switches_at_the_renewal(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request(price=plan("price_premium", 5000)))
    await gateway.advance_customer_clock("cust_1", 10 * DAY)

    changed = await gateway.change_plan(
        PlanChangeRequest(created.reference, plan("price_basic", 2000), ProrationMode.AT_PERIOD_END, "later")
    )

    assert changed.price_id == "price_premium"
    assert changed.pending_price_id == "price_basic"
    await advance_to(gateway, created.reference, at(2027, 2, 1))
    renewed = await gateway.retrieve_subscription(created.reference)
    assert renewed.price_id == "price_basic"
    assert renewed.pending_price_id is None
    assert renewed.latest_invoice is not None
    assert renewed.latest_invoice.amount_due == Money(2000, "USD")
    assert [data_object(e)["amount_due"] for e in await events_of(processor, "invoice.paid")] == [5000, 2000]


async def test_a_metered_invoice_bills_the_usage_of_the_period_once_per_key(gateway: SandboxGateway) -> None:
    metered = plan("price_calls", 25, metered=True)
    created = await gateway.create_subscription(subscription_request(price=metered))
    assert created.status is SubscriptionStatus.ACTIVE
    assert created.latest_invoice is not None and created.latest_invoice.amount_due == Money(0, "USD")
    now = await gateway.billing_now(created.reference)

    first = await gateway.report_usage(UsageReport(created.reference, "price_calls", 3, now, "use-1"))
    again = await gateway.report_usage(UsageReport(created.reference, "price_calls", 3, now, "use-1"))
    await gateway.report_usage(UsageReport(created.reference, "price_calls", 4, now + 60, "use-2"))
    with pytest.raises(GatewayIdempotencyConflict):
        await gateway.report_usage(UsageReport(created.reference, "price_calls", 5, now, "use-1"))

    assert again == first
    await advance_to(gateway, created.reference, at(2027, 2, 1))
    renewed = await gateway.retrieve_subscription(created.reference)
    assert renewed.latest_invoice is not None
    assert renewed.latest_invoice.amount_due == Money(7 * 25, "USD")
    assert (renewed.latest_invoice.period_start, renewed.latest_invoice.period_end) == (JAN_1, at(2027, 2, 1))
    # The next period starts from nothing.
    await advance_to(gateway, created.reference, at(2027, 3, 1))
    latest = await gateway.retrieve_subscription(created.reference)
    assert latest.latest_invoice is not None and latest.latest_invoice.amount_due == Money(0, "USD")


async def test_usage_is_refused_for_a_licensed_price(gateway: SandboxGateway) -> None:
    created = await gateway.create_subscription(subscription_request())

    with pytest.raises(InvalidGatewayRequest):
        await gateway.report_usage(UsageReport(created.reference, "price_basic", 1, JAN_1, "use-x"))


async def test_cancel_at_period_end_ends_at_the_period_end_without_renewing(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request())

    marked = await gateway.cancel_subscription(created.reference, at_period_end=True, idempotency_key="c1")

    assert marked.status is SubscriptionStatus.ACTIVE
    assert marked.cancel_at_period_end is True
    await advance_to(gateway, created.reference, at(2027, 2, 1))
    ended = await gateway.retrieve_subscription(created.reference)
    assert ended.status is SubscriptionStatus.CANCELED
    assert ended.ended_at == at(2027, 2, 1)
    assert len(await events_of(processor, "invoice.created")) == 1
    assert len(await events_of(processor, "customer.subscription.deleted")) == 1


async def test_cancel_now_ends_at_once(processor: SandboxProcessor, gateway: SandboxGateway) -> None:
    created = await gateway.create_subscription(subscription_request())
    await gateway.advance_customer_clock("cust_1", 5 * DAY)

    ended = await gateway.cancel_subscription(created.reference, at_period_end=False, idempotency_key="c2")

    assert ended.status is SubscriptionStatus.CANCELED
    assert ended.canceled_at == ended.ended_at == JAN_1 + 5 * DAY
    assert len(await events_of(processor, "customer.subscription.deleted")) == 1
    with pytest.raises(InvalidGatewayRequest):
        await gateway.pause_subscription(created.reference, idempotency_key="p")


async def test_pause_stops_invoicing_and_resume_starts_a_new_period(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    created = await gateway.create_subscription(subscription_request())
    await gateway.advance_customer_clock("cust_1", 10 * DAY)

    paused = await gateway.pause_subscription(created.reference, idempotency_key="p1")
    assert paused.status is SubscriptionStatus.PAUSED
    await advance_to(gateway, created.reference, at(2027, 3, 10))
    assert len(await events_of(processor, "invoice.created")) == 1

    resumed = await gateway.resume_subscription(created.reference, idempotency_key="r1")

    assert resumed.status is SubscriptionStatus.ACTIVE
    assert (resumed.current_period_start, resumed.current_period_end) == (at(2027, 3, 10), at(2027, 4, 10))
    assert resumed.latest_invoice is not None
    assert resumed.latest_invoice.status is InvoiceStatus.PAID
    assert resumed.latest_invoice.period_start == at(2027, 3, 10)
    assert len(await events_of(processor, "customer.subscription.paused")) == 1
    assert len(await events_of(processor, "customer.subscription.resumed")) == 1


async def test_resume_within_the_period_invoices_nothing(processor: SandboxProcessor, gateway: SandboxGateway) -> None:
    created = await gateway.create_subscription(subscription_request())
    await gateway.pause_subscription(created.reference, idempotency_key="p1")
    await gateway.advance_customer_clock("cust_1", 5 * DAY)

    resumed = await gateway.resume_subscription(created.reference, idempotency_key="r1")

    assert resumed.status is SubscriptionStatus.ACTIVE
    assert resumed.current_period_end == at(2027, 2, 1)
    assert len(await events_of(processor, "invoice.created")) == 1


async def test_the_same_key_creates_one_subscription_and_another_body_is_refused(
    processor: SandboxProcessor, gateway: SandboxGateway
) -> None:
    first = await gateway.create_subscription(subscription_request("same"))
    again = await gateway.create_subscription(subscription_request("same"))

    assert again.reference == first.reference
    assert len(await events_of(processor, "customer.subscription.created")) == 1
    assert len(await processor.list_payment_intents()) == 1
    with pytest.raises(GatewayIdempotencyConflict):
        await gateway.create_subscription(subscription_request("same", price=plan("price_premium", 5000)))
    with pytest.raises(GatewayIdempotencyConflict):
        await gateway.cancel_subscription(first.reference, at_period_end=True, idempotency_key="same")


async def test_each_customer_has_its_own_clock(gateway: SandboxGateway) -> None:
    mine = await gateway.create_subscription(subscription_request("a", customer_id="cust_1"))
    theirs = await gateway.create_subscription(
        subscription_request("b", customer_id="cust_2", payql_subscription_id="psub_2")
    )

    moved = await gateway.advance_customer_clock("cust_1", 40 * DAY)

    assert moved == JAN_1 + 40 * DAY
    assert await gateway.billing_now(mine.reference) == JAN_1 + 40 * DAY
    assert await gateway.billing_now(theirs.reference) == JAN_1
    assert (await gateway.retrieve_subscription(theirs.reference)).current_period_end == at(2027, 2, 1)
    assert (await gateway.retrieve_subscription(mine.reference)).current_period_end == at(2027, 3, 1)
    with pytest.raises(InvalidGatewayRequest):
        await gateway.advance_customer_clock("cust_1", -1)


async def test_unknown_references_are_invalid_requests(gateway: SandboxGateway) -> None:
    with pytest.raises(InvalidGatewayRequest):
        await gateway.retrieve_subscription("sub_sbx_missing")
    with pytest.raises(InvalidGatewayRequest):
        await gateway.retrieve_invoice("in_sbx_missing")
    with pytest.raises(InvalidGatewayRequest):
        await gateway.create_subscription(subscription_request(payment_method="pm_not_a_method"))
