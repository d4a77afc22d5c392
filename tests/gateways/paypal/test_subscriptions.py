"""`PayPalGateway` as a `BillingGateway`: the real SDK over HTTP against the emulator's Subscriptions v1, and the
BILLING.SUBSCRIPTION.* / PAYMENT.SALE.* events it signs, verified and interpreted like any delivery."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from domain.money import Money
from domain.statuses import InvoiceStatus, NextActionType, RefundStatus, SubscriptionStatus
from gateways.billing import BillingGateway
from gateways.errors import InvalidGatewayRequest, NotSupported
from gateways.paypal import PayPalGateway
from gateways.types import (
    EventEffect,
    InvoiceObserved,
    PlanChangeRequest,
    PlanPrice,
    ProrationMode,
    RefundObserved,
    SubscriptionObserved,
    SubscriptionRequest,
    SubscriptionResult,
    UsageReport,
    WebhookDelivery,
)
from tests.gateways.paypal.conftest import make_gateway
from tests.paypal_emulator import PayPalEmulator

MONTHLY = PlanPrice("price_basic", "prod_news", "News Basic", Money(990, "USD"), "MONTH")
PREMIUM = PlanPrice("price_premium", "prod_news", "News Premium", Money(1990, "USD"), "MONTH")


def _request(price: PlanPrice = MONTHLY, *, trial_days: int = 0, key: str | None = None) -> SubscriptionRequest:
    return SubscriptionRequest(
        payql_subscription_id="sub_ours_1",
        customer_id="cus_ours_1",
        customer_email="buyer@example.com",
        price=price,
        payment_method="paypal",
        idempotency_key=key or str(uuid.uuid4()),
        trial_days=trial_days,
        return_url="https://shop.example/account",
    )


async def _emulator_post(emulator: PayPalEmulator, path: str) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{emulator.base_url}{path}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _approved(gateway: PayPalGateway, emulator: PayPalEmulator, **options: Any) -> SubscriptionResult:
    created = await gateway.create_subscription(_request(**options))
    await _emulator_post(emulator, f"/emulator/subscriptions/{created.reference}/approve")
    return created


async def _effects(gateway: PayPalGateway, emulator: PayPalEmulator, event_type: str) -> list[EventEffect]:
    """The newest event of this type, signed by the emulator, verified and interpreted by the gateway."""
    event = next(e for e in reversed(emulator.events) if e["event_type"] == event_type)
    signed = emulator.sign(event)
    verified = await gateway.verify_webhook(WebhookDelivery(signed.headers, signed.body, int(time.time())))
    return gateway.interpret_event(verified)


async def test_the_gateway_implements_the_billing_protocol(gateway: PayPalGateway) -> None:
    assert isinstance(gateway, BillingGateway)
    assert abs(await gateway.billing_now("I-ANY") - time.time()) < 60


async def test_creation_waits_for_the_buyer_with_the_approve_link(
    gateway: PayPalGateway, emulator: PayPalEmulator
) -> None:
    created = await gateway.create_subscription(_request())
    assert created.status is SubscriptionStatus.INCOMPLETE and created.gateway_status == "APPROVAL_PENDING"
    assert created.price_id == "price_basic" and created.payql_subscription_id == "sub_ours_1"
    invoice = created.latest_invoice
    assert invoice is not None and invoice.status is InvoiceStatus.OPEN
    assert invoice.amount_due == Money(990, "USD") and invoice.billing_reason == "subscription_create"
    assert invoice.next_action is not None and invoice.next_action.type is NextActionType.REDIRECT
    assert (invoice.next_action.redirect_url or "").startswith(f"{emulator.base_url}/webapps/billing/subscriptions")
    # The catalog product has our id; the plan carries our price; both are made once and found again after.
    (product,) = emulator.billing.products.values()
    assert product.id == "PAYQL-prod_news"
    (plan,) = emulator.billing.plans.values()
    assert emulator.billing.subscriptions[created.reference].plan_id == plan.id
    assert emulator.events[-1]["event_type"] == "BILLING.SUBSCRIPTION.CREATED"


async def test_the_approval_invoice_is_open_until_the_buyer_approves_then_void(
    gateway: PayPalGateway, emulator: PayPalEmulator
) -> None:
    created = await gateway.create_subscription(_request())
    assert created.latest_invoice is not None
    reference = created.latest_invoice.reference
    pending = await gateway.retrieve_invoice(reference)
    assert pending.status is InvoiceStatus.OPEN and pending.next_action is not None
    with pytest.raises(InvalidGatewayRequest, match="approve"):
        await gateway.pay_invoice(reference, idempotency_key="pay-approval")
    await _emulator_post(emulator, f"/emulator/subscriptions/{created.reference}/approve")
    approved = await gateway.retrieve_invoice(reference)
    assert approved.status is InvoiceStatus.VOID and approved.next_action is None and approved.amount_paid == 0


async def test_plans_are_found_again_by_a_fresh_adapter(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    await gateway.create_subscription(_request())
    fresh = make_gateway(emulator)
    try:
        again = await fresh.create_subscription(_request())
        assert again.price_id == "price_basic"
    finally:
        await fresh.aclose()
    assert len(emulator.billing.plans) == 1 and len(emulator.billing.products) == 1
    # A trial is a TRIAL cycle of its own plan: one plan per (price, trial days).
    await gateway.create_subscription(_request(trial_days=14))
    assert len(emulator.billing.plans) == 2


async def test_every_creation_carries_a_request_id_from_our_entity(
    gateway: PayPalGateway, emulator: PayPalEmulator
) -> None:
    first = await gateway.create_subscription(_request(key="sub-key-1"))
    again = await gateway.create_subscription(_request(key="sub-key-1"))
    assert again.reference == first.reference and len(emulator.billing.subscriptions) == 1
    posts = {path: rid for method, path, rid in emulator.calls.requests if method == "POST"}
    for path in ("/v1/catalogs/products", "/v1/billing/plans", "/v1/billing/subscriptions"):
        assert (posts[path] or "").startswith("payql-"), path


async def test_approval_activates_and_the_first_cycle_is_a_paid_sale(
    gateway: PayPalGateway, emulator: PayPalEmulator
) -> None:
    created = await _approved(gateway, emulator)
    (activated,) = await _effects(gateway, emulator, "BILLING.SUBSCRIPTION.ACTIVATED")
    assert isinstance(activated, SubscriptionObserved) and activated.stale_possible
    assert activated.result.reference == created.reference
    assert activated.result.status is SubscriptionStatus.ACTIVE
    assert activated.result.payql_subscription_id == "sub_ours_1"

    current = await gateway.retrieve_subscription(created.reference)
    assert current.status is SubscriptionStatus.ACTIVE and current.price_id == "price_basic"
    assert current.customer_reference == "QYR5Z8XDVJNXQ"
    assert current.current_period_end is not None and current.current_period_end > time.time()
    assert current.latest_invoice is not None and current.latest_invoice.status is InvoiceStatus.VOID

    (paid, owner) = await _effects(gateway, emulator, "PAYMENT.SALE.COMPLETED")
    assert isinstance(owner, SubscriptionObserved) and owner.stale_possible
    assert owner.result.reference == created.reference
    assert isinstance(paid, InvoiceObserved) and paid.event == "paid"
    (sale_id,) = emulator.billing.sales
    assert paid.result.reference == sale_id and paid.result.payment_reference == f"paypal_sale:{sale_id}"
    assert paid.result.subscription_reference == created.reference
    assert paid.result.status is InvoiceStatus.PAID and paid.result.amount_paid == 990
    assert paid.result.payql_subscription_id == "sub_ours_1"
    reread = await gateway.retrieve_invoice(sale_id)
    assert (reread.status, reread.amount_due) == (InvoiceStatus.PAID, Money(990, "USD"))


async def test_a_trial_starts_without_a_payment(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    created = await gateway.create_subscription(_request(trial_days=14))
    assert created.latest_invoice is not None and created.latest_invoice.amount_due == Money(0, "USD")
    await _emulator_post(emulator, f"/emulator/subscriptions/{created.reference}/approve")
    current = await gateway.retrieve_subscription(created.reference)
    assert current.status is SubscriptionStatus.TRIALING and current.trial_end is not None
    assert not emulator.billing.sales
    await _emulator_post(emulator, f"/emulator/subscriptions/{created.reference}/bill")
    assert (await gateway.retrieve_subscription(created.reference)).status is SubscriptionStatus.ACTIVE
    assert len(emulator.billing.sales) == 1


async def test_suspend_activate_and_cancel(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    ref = (await _approved(gateway, emulator)).reference
    paused = await gateway.pause_subscription(ref, idempotency_key="p1")
    assert paused.status is SubscriptionStatus.PAUSED and paused.gateway_status == "SUSPENDED"
    (suspended,) = await _effects(gateway, emulator, "BILLING.SUBSCRIPTION.SUSPENDED")
    assert isinstance(suspended, SubscriptionObserved) and suspended.result.status is SubscriptionStatus.PAUSED
    # A repeat (PayPal refuses it: SUBSCRIPTION_STATUS_INVALID) answers the state reached.
    assert (await gateway.pause_subscription(ref, idempotency_key="p1")).status is SubscriptionStatus.PAUSED

    resumed = await gateway.resume_subscription(ref, idempotency_key="r1")
    assert resumed.status is SubscriptionStatus.ACTIVE

    canceled = await gateway.cancel_subscription(ref, at_period_end=False, idempotency_key="c1")
    assert canceled.status is SubscriptionStatus.CANCELED and canceled.canceled_at is not None
    assert not canceled.cancel_at_period_end
    (cancelled,) = await _effects(gateway, emulator, "BILLING.SUBSCRIPTION.CANCELLED")
    assert isinstance(cancelled, SubscriptionObserved) and cancelled.result.status is SubscriptionStatus.CANCELED
    again = await gateway.cancel_subscription(ref, at_period_end=False, idempotency_key="c1")
    assert again.status is SubscriptionStatus.CANCELED
    assert emulator.billing.subscriptions[ref].status == "CANCELLED"


async def test_cancel_at_period_end_cancels_now_and_keeps_the_paid_period(
    gateway: PayPalGateway, emulator: PayPalEmulator
) -> None:
    ref = (await _approved(gateway, emulator)).reference
    paid_through = (await gateway.retrieve_subscription(ref)).current_period_end
    result = await gateway.cancel_subscription(ref, at_period_end=True, idempotency_key="c1")
    assert result.status is SubscriptionStatus.CANCELED and result.cancel_at_period_end
    assert result.current_period_end == paid_through and paid_through is not None
    assert emulator.billing.subscriptions[ref].status == "CANCELLED"


async def test_expiry_maps_to_canceled(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    ref = (await _approved(gateway, emulator)).reference
    await _emulator_post(emulator, f"/emulator/subscriptions/{ref}/expire")
    (expired,) = await _effects(gateway, emulator, "BILLING.SUBSCRIPTION.EXPIRED")
    assert isinstance(expired, SubscriptionObserved) and expired.result.status is SubscriptionStatus.CANCELED
    assert expired.result.ended_at is not None


async def test_a_failed_cycle_is_an_open_invoice_that_pay_invoice_collects(
    gateway: PayPalGateway, emulator: PayPalEmulator
) -> None:
    ref = (await _approved(gateway, emulator)).reference
    await _emulator_post(emulator, f"/emulator/subscriptions/{ref}/bill?outcome=failed")
    (owing, failed) = await _effects(gateway, emulator, "BILLING.SUBSCRIPTION.PAYMENT.FAILED")
    assert isinstance(owing, SubscriptionObserved) and owing.result.status is SubscriptionStatus.PAST_DUE
    assert isinstance(failed, InvoiceObserved) and failed.event == "payment_failed"
    invoice = failed.result
    assert invoice.reference.startswith(f"{ref}:outstanding:") and invoice.status is InvoiceStatus.OPEN
    assert invoice.amount_due == Money(990, "USD") and invoice.decline_code == "generic_decline"
    assert (await gateway.retrieve_subscription(ref)).status is SubscriptionStatus.PAST_DUE

    emulator.decline_next("INSTRUMENT_DECLINED")
    declined = await gateway.pay_invoice(invoice.reference, idempotency_key="dun-1")
    assert declined.status is InvoiceStatus.OPEN and declined.decline_code == "generic_decline"

    paid = await gateway.pay_invoice(invoice.reference, idempotency_key="dun-2")
    assert paid.status is InvoiceStatus.PAID and paid.amount_paid == 990 and paid.payment_reference
    assert emulator.billing.subscriptions[ref].outstanding == 0
    captures = [rid for method, path, rid in emulator.calls.requests if path.endswith(f"{ref}/capture")]
    assert len(captures) == 2 and all((rid or "").startswith("payql-capture-outstanding-") for rid in captures)
    assert (await gateway.retrieve_invoice(invoice.reference)).status is InvoiceStatus.PAID
    assert (await gateway.retrieve_subscription(ref)).status is SubscriptionStatus.ACTIVE


async def test_a_denied_sale_is_owed_as_the_outstanding_balance(
    gateway: PayPalGateway, emulator: PayPalEmulator
) -> None:
    """Not a second invoice to dun: the event has the subscription read back, which owes the balance."""
    ref = (await _approved(gateway, emulator)).reference
    await _emulator_post(emulator, f"/emulator/subscriptions/{ref}/bill?outcome=denied")
    (denied,) = await _effects(gateway, emulator, "PAYMENT.SALE.DENIED")
    assert isinstance(denied, SubscriptionObserved) and denied.stale_possible
    assert denied.result.reference == ref and denied.result.payql_subscription_id == "sub_ours_1"
    reread = await gateway.retrieve_subscription(ref)
    assert reread.status is SubscriptionStatus.PAST_DUE
    assert reread.latest_invoice is not None and reread.latest_invoice.reference.startswith(f"{ref}:outstanding:")


async def test_a_sale_refund_is_a_refund_of_that_payment(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    await _approved(gateway, emulator)
    (sale_id,) = emulator.billing.sales
    emulator.billing.refund_sale(sale_id, {"amount": {"total": "4.00", "currency": "USD"}})
    (refunded,) = await _effects(gateway, emulator, "PAYMENT.SALE.REFUNDED")
    assert isinstance(refunded, RefundObserved)
    assert refunded.result.payment_reference == f"paypal_sale:{sale_id}" and refunded.result.amount == Money(400, "USD")
    assert refunded.result.status is RefundStatus.SUCCEEDED


async def test_plan_changes_apply_at_the_next_cycle_after_the_buyer_agrees(
    gateway: PayPalGateway, emulator: PayPalEmulator
) -> None:
    ref = (await _approved(gateway, emulator)).reference
    with pytest.raises(NotSupported, match="next billing cycle"):
        await gateway.change_plan(PlanChangeRequest(ref, PREMIUM, ProrationMode.IMMEDIATE, "chg-0"))
    preview = await gateway.preview_plan_change(ref, PREMIUM)
    assert preview.amount_due_now == Money(0, "USD") and preview.next_invoice_amount == Money(1990, "USD")

    changed = await gateway.change_plan(PlanChangeRequest(ref, PREMIUM, ProrationMode.AT_PERIOD_END, "chg-1"))
    assert changed.price_id == "price_basic" and changed.pending_price_id == "price_premium"
    consent = changed.latest_invoice
    assert consent is not None and consent.next_action is not None
    assert consent.billing_reason == "subscription_update"
    await _emulator_post(emulator, f"/emulator/subscriptions/{ref}/approve")
    (updated,) = await _effects(gateway, emulator, "BILLING.SUBSCRIPTION.UPDATED")
    assert isinstance(updated, SubscriptionObserved)
    assert (await gateway.retrieve_subscription(ref)).price_id == "price_premium"


async def test_what_paypal_cannot_do_is_not_supported(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    ref = (await _approved(gateway, emulator)).reference
    with pytest.raises(NotSupported, match="metered"):
        await gateway.report_usage(UsageReport(ref, "price_basic", 3, int(time.time()), "use-1"))
    with pytest.raises(NotSupported, match="metered"):
        await gateway.create_subscription(
            _request(PlanPrice("p_m", "prod_m", "Metered", Money(1, "USD"), "MONTH", metered=True))
        )
    with pytest.raises(NotSupported, match="funding source"):
        await gateway.update_default_payment_method(ref, "pm_other", idempotency_key="pm-1")
