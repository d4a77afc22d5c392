"""Recorded Billing, Checkout and dispute events (tests/fixtures/stripe/<event type>.json), signed here,
verified and interpreted by the adapter. Shapes are those of the pinned API version (see
`tests/fixtures/stripe/README.md`). What each one stands for:

- customer.subscription.created          — a subscription whose first invoice is not paid → INCOMPLETE
- customer.subscription.updated          — a renewal failed → PAST_DUE; `updated` is the event's `created`
- customer.subscription.trial_will_end   — three days before a trial ends → TRIALING + TRIAL_WILL_END notice
- customer.subscription.paused           — Stripe paused it (a trial ended without a method) → PAUSED
- customer.subscription.deleted          — canceled now → CANCELED with `canceled_at` / `ended_at`
- invoice.paid                           — a renewal paid → InvoiceObserved(paid), PAID, our subscription id
- invoice.payment_failed                 — a renewal declined, second attempt → InvoiceObserved(payment_failed)
- invoice.payment_action_required        — the first invoice needs 3-D Secure → InvoiceObserved(action_required)
- invoice.finalized                      — an invoice ready to be charged → InvoiceObserved(finalized)
- invoice.upcoming                       — the renewal preview (no id yet) → INVOICE_UPCOMING notice
- charge.dispute.created                 — a fraud chargeback opened → NEEDS_RESPONSE with the evidence due date
- charge.dispute.updated                 — evidence submitted → UNDER_REVIEW
- charge.dispute.closed                  — the issuer decided for the cardholder → LOST
- charge.dispute.funds_withdrawn         — funds taken while it needs a response → NEEDS_RESPONSE
- charge.dispute.funds_reinstated        — the merchant won → WON
- checkout.session.completed             — a hosted payment paid; the copy's intent is an id → re-read, never PAID
- checkout.session.async_payment_succeeded — a delayed method (SEPA) succeeded later → re-read
- checkout.session.async_payment_failed  — a delayed method failed → re-read
- checkout.session.expired               — nobody paid before the expiry → CANCELED
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from domain.money import Money
from domain.statuses import DisputeStatus, InvoiceStatus, PaymentStatus, SubscriptionStatus
from gateways.stripe.adapter import StripeGateway
from gateways.stripe_signature import sign
from gateways.types import (
    DisputeObserved,
    EventEffect,
    EventIgnored,
    InvoiceObserved,
    PaymentObserved,
    SubscriptionNotice,
    SubscriptionNoticeKind,
    SubscriptionObserved,
    WebhookDelivery,
)

FIXTURES = Path(__file__).parents[2] / "fixtures" / "stripe"
SECRET = "whsec_billing_events"
NOW = 1_764_200_000
CREATED = 1_764_115_200
PERIOD_END = CREATED + 30 * 86400


@pytest.fixture
async def gateway() -> AsyncIterator[StripeGateway]:
    gateway = StripeGateway("sk_test_recorded", webhook_secrets=[SECRET], base_url="http://127.0.0.1:9")
    yield gateway
    await gateway.aclose()


async def effects_of(gateway: StripeGateway, name: str, body: bytes | None = None) -> list[EventEffect]:
    body = body if body is not None else (FIXTURES / f"{name}.json").read_bytes()
    delivery = WebhookDelivery(headers={"stripe-signature": sign(SECRET, NOW, body)}, body=body, received_at=NOW)
    return gateway.interpret_event(await gateway.verify_webhook(delivery))


def changed(name: str, **changes: Any) -> bytes:
    event = json.loads((FIXTURES / f"{name}.json").read_bytes())
    event["data"]["object"].update(changes)
    return json.dumps(event).encode()


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("customer.subscription.created", SubscriptionStatus.INCOMPLETE),
        ("customer.subscription.updated", SubscriptionStatus.PAST_DUE),
        ("customer.subscription.paused", SubscriptionStatus.PAUSED),
        ("customer.subscription.deleted", SubscriptionStatus.CANCELED),
    ],
)
async def test_subscription_events_are_subscriptions_observed(
    gateway: StripeGateway, name: str, status: SubscriptionStatus
) -> None:
    [effect] = await effects_of(gateway, name)

    assert isinstance(effect, SubscriptionObserved)
    assert effect.stale_possible is True
    result = effect.result
    assert result.status is status
    assert result.reference == "sub_1RecordedSub00001"
    assert result.payql_subscription_id == "subs_recorded_1"
    assert result.price_id == "plan_recorded_1"
    assert result.customer_reference == "cus_1RecordedCust001"
    assert (result.current_period_start, result.current_period_end) == (CREATED, PERIOD_END)
    assert result.updated == CREATED
    assert result.latest_invoice is None  # an id in events, not an object


async def test_a_deleted_subscription_says_when_it_ended(gateway: StripeGateway) -> None:
    [effect] = await effects_of(gateway, "customer.subscription.deleted")

    assert isinstance(effect, SubscriptionObserved)
    assert (effect.result.canceled_at, effect.result.ended_at) == (CREATED, CREATED)


async def test_collection_paused_by_the_merchant_is_paused_for_us(gateway: StripeGateway) -> None:
    body = changed("customer.subscription.updated", status="active", pause_collection={"behavior": "void"})

    [effect] = await effects_of(gateway, "customer.subscription.updated", body)

    assert isinstance(effect, SubscriptionObserved)
    assert effect.result.status is SubscriptionStatus.PAUSED


async def test_an_unknown_subscription_status_grants_nothing(gateway: StripeGateway) -> None:
    body = changed("customer.subscription.updated", status="something_new")

    [effect] = await effects_of(gateway, "customer.subscription.updated", body)

    assert isinstance(effect, SubscriptionObserved)
    assert effect.result.status is SubscriptionStatus.INCOMPLETE


async def test_trial_will_end_is_observed_and_told(gateway: StripeGateway) -> None:
    observed, notice = await effects_of(gateway, "customer.subscription.trial_will_end")

    assert isinstance(observed, SubscriptionObserved)
    assert observed.result.status is SubscriptionStatus.TRIALING
    assert notice == SubscriptionNotice(
        "sub_1RecordedSub00001", SubscriptionNoticeKind.TRIAL_WILL_END, at=CREATED + 3 * 86400
    )


@pytest.mark.parametrize(
    ("name", "event", "status"),
    [
        ("invoice.paid", "paid", InvoiceStatus.PAID),
        ("invoice.payment_failed", "payment_failed", InvoiceStatus.OPEN),
        ("invoice.payment_action_required", "action_required", InvoiceStatus.OPEN),
        ("invoice.finalized", "finalized", InvoiceStatus.OPEN),
    ],
)
async def test_invoice_events_are_invoices_observed(
    gateway: StripeGateway, name: str, event: str, status: InvoiceStatus
) -> None:
    [effect] = await effects_of(gateway, name)

    assert isinstance(effect, InvoiceObserved)
    assert effect.event == event
    assert effect.stale_possible is True
    result = effect.result
    assert result.status is status
    assert result.reference == "in_1RecordedInvoice01"
    assert result.subscription_reference == "sub_1RecordedSub00001"
    assert result.payql_subscription_id == "subs_recorded_1"
    assert result.amount_due == Money(1500, "EUR")
    assert (result.period_start, result.period_end) == (CREATED, PERIOD_END)


async def test_a_failed_renewal_says_which_attempt_it_was(gateway: StripeGateway) -> None:
    [effect] = await effects_of(gateway, "invoice.payment_failed")

    assert isinstance(effect, InvoiceObserved)
    assert effect.result.attempt_count == 2
    assert effect.result.billing_reason == "subscription_cycle"


async def test_an_upcoming_invoice_is_a_notice_about_its_subscription(gateway: StripeGateway) -> None:
    [effect] = await effects_of(gateway, "invoice.upcoming")

    assert effect == SubscriptionNotice("sub_1RecordedSub00001", SubscriptionNoticeKind.INVOICE_UPCOMING, at=PERIOD_END)


async def test_an_invoice_of_no_subscription_is_ignored(gateway: StripeGateway) -> None:
    body = changed("invoice.paid", parent=None)

    [effect] = await effects_of(gateway, "invoice.paid", body)

    assert isinstance(effect, EventIgnored)
    assert "no subscription" in effect.reason


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("charge.dispute.created", DisputeStatus.NEEDS_RESPONSE),
        ("charge.dispute.funds_withdrawn", DisputeStatus.NEEDS_RESPONSE),
        ("charge.dispute.updated", DisputeStatus.UNDER_REVIEW),
        ("charge.dispute.closed", DisputeStatus.LOST),
        ("charge.dispute.funds_reinstated", DisputeStatus.WON),
    ],
)
async def test_dispute_events_are_disputes_observed(gateway: StripeGateway, name: str, status: DisputeStatus) -> None:
    [effect] = await effects_of(gateway, name)

    assert isinstance(effect, DisputeObserved)
    assert effect.stale_possible is True
    result = effect.result
    assert result.status is status
    assert result.reference == "dp_1RecordedDispute001"
    assert result.payment_reference == "pi_3RecordedIntent0001"
    assert result.amount == Money(2000, "USD")
    assert result.evidence_due_by == CREATED + 7 * 86400
    assert result.payql_payment_id is None  # the intent is an id in events: the re-read expands it


@pytest.mark.parametrize(
    ("stripe_status", "status"),
    [
        ("warning_needs_response", DisputeStatus.NEEDS_RESPONSE),
        ("warning_under_review", DisputeStatus.UNDER_REVIEW),
        ("warning_closed", DisputeStatus.WON),
        ("won", DisputeStatus.WON),
        ("lost", DisputeStatus.LOST),
        ("prevented_somehow", DisputeStatus.NEEDS_RESPONSE),
    ],
)
async def test_every_dispute_status_maps_and_an_unknown_one_is_never_a_win(
    gateway: StripeGateway, stripe_status: str, status: DisputeStatus
) -> None:
    body = changed("charge.dispute.updated", status=stripe_status)

    [effect] = await effects_of(gateway, "charge.dispute.updated", body)

    assert isinstance(effect, DisputeObserved)
    assert effect.result.status is status


@pytest.mark.parametrize(
    "name",
    [
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
    ],
)
async def test_checkout_events_are_re_read_and_never_paid_from_the_copy(gateway: StripeGateway, name: str) -> None:
    [effect] = await effects_of(gateway, name)

    assert isinstance(effect, PaymentObserved)
    assert effect.stale_possible is True
    assert effect.result.reference == "cs_test_recorded0001"
    assert effect.result.payql_payment_id == "pay_recorded_1"
    assert effect.result.status is PaymentStatus.PROCESSING


async def test_an_expired_checkout_is_canceled(gateway: StripeGateway) -> None:
    [effect] = await effects_of(gateway, "checkout.session.expired")

    assert isinstance(effect, PaymentObserved)
    assert effect.result.status is PaymentStatus.CANCELED
    assert effect.result.payql_payment_id == "pay_recorded_1"


async def test_a_subscription_mode_checkout_is_not_a_payment_of_ours(gateway: StripeGateway) -> None:
    body = changed("checkout.session.completed", mode="subscription")

    [effect] = await effects_of(gateway, "checkout.session.completed", body)

    assert isinstance(effect, EventIgnored)


@pytest.mark.parametrize(
    ("stripe_status", "status"),
    [
        ("draft", InvoiceStatus.DRAFT),
        ("open", InvoiceStatus.OPEN),
        ("paid", InvoiceStatus.PAID),
        ("uncollectible", InvoiceStatus.UNCOLLECTIBLE),
        ("void", InvoiceStatus.VOID),
        ("something_new", InvoiceStatus.DRAFT),
    ],
)
async def test_every_invoice_status_maps_and_an_unknown_one_is_never_paid(
    gateway: StripeGateway, stripe_status: str, status: InvoiceStatus
) -> None:
    body = changed("invoice.paid", status=stripe_status)

    [effect] = await effects_of(gateway, "invoice.paid", body)

    assert isinstance(effect, InvoiceObserved)
    assert effect.result.status is status
