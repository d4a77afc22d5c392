"""Stripe Billing through the real SDK over HTTP, against recorded answers (`recorded_stripe.py`).

localstripe only knows legacy Plans and leaves every subscription `incomplete`, so what Billing really
does (Prices found by lookup key, meters, trials, schedules, previews, pause) is answered here from
recorded objects, and the tests check both what the adapter makes of the answers and what the SDK sent.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from domain.money import Money
from domain.statuses import InvoiceStatus, NextActionType, SubscriptionStatus
from gateways.billing import BillingGateway
from gateways.errors import GatewayConfigurationError
from gateways.stripe.adapter import StripeGateway
from gateways.types import PlanChangeRequest, PlanPrice, ProrationMode, SubscriptionRequest, UsageReport
from tests.gateways.stripe.recorded_stripe import (
    RecordedStripe,
    card_declined,
    listed,
    missing,
    recorded,
)
from tests.gateways.stripe.servers import Answer, RecordedRequest, serve

SUB = "sub_1RecordedSub00001"
INVOICE = "in_1RecordedInvoice01"
INTENT = "pi_3RecordedIntent0001"
PLAN = PlanPrice(
    price_id="plan_recorded_1",
    product_id="prod_recorded_1",
    product_name="Recorded plan",
    unit_amount=Money(1500, "EUR"),
    interval="MONTH",
)
PREMIUM = PlanPrice(
    price_id="plan_recorded_2",
    product_id="prod_recorded_1",
    product_name="Recorded plan",
    unit_amount=Money(4000, "EUR"),
    interval="MONTH",
)
PREMIUM_PRICE = recorded(
    "price",
    id="price_1RecordedPrice002",
    lookup_key="plan_recorded_2",
    unit_amount=4000,
    unit_amount_decimal="4000",
    metadata={"payql_price_id": "plan_recorded_2"},
)


@pytest.fixture
async def billing() -> AsyncIterator[tuple[RecordedStripe, StripeGateway]]:
    server = RecordedStripe()
    async with serve(server) as base_url:
        gateway = StripeGateway("sk_test_recorded_billing", webhook_secrets=["whsec_x"], base_url=base_url, timeout=5)
        yield server, gateway
        await gateway.aclose()


def invoice_payment(intent: str = INTENT) -> dict[str, Any]:
    return {
        "id": "inpay_1Recorded0001",
        "object": "invoice_payment",
        "invoice": INVOICE,
        "is_default": True,
        "payment": {"type": "payment_intent", "payment_intent": intent},
        "status": "open",
    }


def invoice(**changes: Any) -> dict[str, Any]:
    base = {
        "payments": listed(invoice_payment()),
        "confirmation_secret": {"client_secret": "pi_3RecordedIntent0001_secret_invoice", "type": "payment_intent"},
    }
    return recorded("invoice", **{**base, **changes})


def subscription(**changes: Any) -> dict[str, Any]:
    return recorded("subscription", **{"latest_invoice": invoice(status="paid", amount_paid=1500), **changes})


def intent(status: str, **changes: Any) -> dict[str, Any]:
    return recorded("payment_intent", status=status, id=INTENT, **changes)


def request(**changes: Any) -> SubscriptionRequest:
    values: dict[str, Any] = {
        "payql_subscription_id": "subs_recorded_1",
        "customer_id": "cust_recorded_1",
        "customer_email": "shopper@example.com",
        "price": PLAN,
        "payment_method": "pm_1RecordedMethod01",
        "idempotency_key": "payql-subscription-subs_recorded_1",
    }
    return SubscriptionRequest(**{**values, **changes})


def known_price(server: RecordedStripe) -> None:
    server.on("GET", "/v1/prices", listed(recorded("price")))
    server.on("POST", "/v1/payment_methods/[^/]+/attach", recorded("payment_method"))


def keys_sent(server: RecordedStripe) -> list[str]:
    return [r.headers.get("idempotency-key", "") for r in server.requests if r.method == "POST"]


def test_the_stripe_gateway_is_a_billing_gateway() -> None:
    gateway = StripeGateway("sk_test_x", webhook_secrets=[])
    assert isinstance(gateway, BillingGateway)


async def test_first_subscription_creates_product_price_and_customer_and_returns_the_customer(
    billing: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = billing
    server.on("GET", "/v1/prices", listed())
    server.on("GET", "/v1/products/.+", missing())
    server.on("POST", "/v1/products", recorded("product"))
    server.on("POST", "/v1/prices", recorded("price"))
    server.on("POST", "/v1/customers", recorded("customer"))
    server.on("POST", "/v1/payment_methods/[^/]+/attach", recorded("payment_method"))
    server.on("POST", "/v1/subscriptions", subscription())

    result = await gateway.create_subscription(request())

    assert result.status is SubscriptionStatus.ACTIVE
    assert result.reference == SUB
    assert result.customer_reference == "cus_1RecordedCust001"
    assert result.price_id == "plan_recorded_1"
    assert result.payql_subscription_id == "subs_recorded_1"
    assert (result.current_period_start, result.current_period_end) == (1764115200, 1764115200 + 30 * 86400)
    assert result.latest_invoice is not None and result.latest_invoice.status is InvoiceStatus.PAID
    assert server.only("GET", "/v1/prices").form["lookup_keys[0]"] == "plan_recorded_1"
    assert server.only("POST", "/v1/products").form["id"] == "payql_prod_recorded_1"
    price = server.only("POST", "/v1/prices").form
    assert price["lookup_key"] == "plan_recorded_1"
    assert price["transfer_lookup_key"] == "true"
    assert price["metadata[payql_price_id]"] == "plan_recorded_1"
    assert (price["currency"], price["unit_amount"], price["recurring[interval]"]) == ("eur", "1500", "month")
    assert server.only("POST", "/v1/customers").form["email"] == "shopper@example.com"
    created = server.only("POST", "/v1/subscriptions").form
    assert created["customer"] == "cus_1RecordedCust001"
    assert created["items[0][price]"] == "price_1RecordedPrice001"
    assert created["payment_behavior"] == "allow_incomplete"
    assert created["metadata[payql_subscription_id]"] == "subs_recorded_1"
    assert "trial_period_days" not in created
    keys = keys_sent(server)
    assert all(keys) and len(set(keys)) == len(keys)
    assert "payql-subscription-subs_recorded_1-subscription" in keys


async def test_a_known_customer_and_price_are_reused_and_a_trial_is_asked_for(
    billing: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = billing
    known_price(server)
    trialing = subscription(status="trialing", trial_end=1764115200 + 14 * 86400, latest_invoice=None)
    server.on("POST", "/v1/subscriptions", trialing)

    result = await gateway.create_subscription(request(gateway_customer="cus_1RecordedCust001", trial_days=14))

    assert result.status is SubscriptionStatus.TRIALING
    assert result.trial_end == 1764115200 + 14 * 86400
    assert server.sent("POST", "/v1/customers") == []
    assert server.sent("POST", "/v1/prices") == []
    assert server.only("POST", "/v1/subscriptions").form["trial_period_days"] == "14"
    assert server.only("POST", "/v1/payment_methods/pm_1RecordedMethod01/attach").form == {
        "customer": "cus_1RecordedCust001"
    }


async def test_a_first_payment_needing_3ds_hands_the_invoice_client_secret_to_stripe_js(
    billing: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = billing
    known_price(server)
    server.on("POST", "/v1/subscriptions", subscription(status="incomplete", latest_invoice=invoice(status="open")))
    server.on("GET", f"/v1/payment_intents/{INTENT}", intent("requires_action"))

    result = await gateway.create_subscription(request(gateway_customer="cus_1RecordedCust001"))

    assert result.status is SubscriptionStatus.INCOMPLETE
    assert result.latest_invoice is not None
    assert result.latest_invoice.status is InvoiceStatus.OPEN
    assert result.latest_invoice.payment_reference == INTENT
    action = result.latest_invoice.next_action
    assert action is not None and action.type is NextActionType.CONFIRM_WITH_SDK
    assert action.client_secret == "pi_3RecordedIntent0001_secret_invoice"
    created = server.only("POST", "/v1/subscriptions").form
    assert (created["expand[0]"], created["expand[1]"]) == (
        "latest_invoice.payments",
        "latest_invoice.confirmation_secret",
    )


async def test_a_declined_first_payment_is_an_incomplete_subscription_with_the_decline(
    billing: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = billing
    known_price(server)
    server.on("POST", "/v1/subscriptions", subscription(status="incomplete", latest_invoice=invoice(status="open")))
    failed = intent(
        "requires_payment_method",
        last_payment_error={"code": "card_declined", "decline_code": "insufficient_funds", "message": "Declined."},
    )
    server.on("GET", f"/v1/payment_intents/{INTENT}", failed)

    result = await gateway.create_subscription(request(gateway_customer="cus_1RecordedCust001"))

    assert result.status is SubscriptionStatus.INCOMPLETE
    assert result.latest_invoice is not None
    assert result.latest_invoice.decline_code == "insufficient_funds"
    assert result.latest_invoice.next_action is None


async def test_a_metered_price_gets_a_meter_and_usage_is_a_meter_event_with_our_key(
    billing: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = billing
    metered = dataclasses.replace(PLAN, unit_amount=Money(5, "EUR"), metered=True)
    server.on("GET", "/v1/prices", listed(recorded("price")))  # licensed at 1500: stale for this plan
    server.on("GET", "/v1/products/.+", recorded("product"))
    server.on("GET", "/v1/billing/meters", listed())
    server.on("POST", "/v1/billing/meters", recorded("billing.meter"))
    server.on("POST", "/v1/prices", recorded("price", id="price_1RecordedMetered1"))
    server.on("POST", "/v1/payment_methods/[^/]+/attach", recorded("payment_method"))
    server.on("POST", "/v1/subscriptions", subscription())
    server.on("GET", f"/v1/subscriptions/{SUB}", subscription())
    server.on("POST", "/v1/billing/meter_events", recorded("billing.meter_event", identifier="usage-key-1"))

    await gateway.create_subscription(request(price=metered, gateway_customer="cus_1RecordedCust001"))
    usage = await gateway.report_usage(
        UsageReport(SUB, "plan_recorded_1", quantity=3, timestamp=1764200000, idempotency_key="usage-key-1")
    )

    meter = server.only("POST", "/v1/billing/meters").form
    assert meter["event_name"] == "payql_usage_plan_recorded_1"
    assert meter["default_aggregation[formula]"] == "sum"
    price = server.only("POST", "/v1/prices").form
    assert (price["recurring[usage_type]"], price["recurring[meter]"]) == ("metered", "mtr_1RecordedMeter001")
    assert price["unit_amount"] == "5"
    assert usage == "usage-key-1"
    event = server.only("POST", "/v1/billing/meter_events")
    assert event.form == {
        "event_name": "payql_usage_plan_recorded_1",
        "payload[stripe_customer_id]": "cus_1RecordedCust001",
        "payload[value]": "3",
        "identifier": "usage-key-1",
        "timestamp": "1764200000",
    }
    assert event.headers["idempotency-key"] == "usage-key-1"


@pytest.mark.parametrize(
    ("mode", "proration"), [(ProrationMode.IMMEDIATE, "always_invoice"), (ProrationMode.NONE, "none")]
)
async def test_a_plan_change_now_swaps_the_item_with_the_asked_proration(
    billing: tuple[RecordedStripe, StripeGateway], mode: ProrationMode, proration: str
) -> None:
    server, gateway = billing
    server.on("GET", f"/v1/subscriptions/{SUB}", subscription())
    server.on("GET", "/v1/prices", listed(PREMIUM_PRICE))
    upgraded = subscription(items={"data": [{**recorded("subscription")["items"]["data"][0], "price": PREMIUM_PRICE}]})
    server.on("POST", f"/v1/subscriptions/{SUB}", upgraded)

    result = await gateway.change_plan(PlanChangeRequest(SUB, PREMIUM, mode, idempotency_key="change-1"))

    assert result.price_id == "plan_recorded_2"
    update = server.only("POST", f"/v1/subscriptions/{SUB}")
    assert update.form["items[0][id]"] == "si_1RecordedItem0001"
    assert update.form["items[0][price]"] == "price_1RecordedPrice002"
    assert update.form["proration_behavior"] == proration
    assert update.headers["idempotency-key"] == "change-1"


async def test_a_plan_change_at_period_end_goes_through_a_schedule_and_is_pending(
    billing: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = billing
    server.on("GET", f"/v1/subscriptions/{SUB}", subscription())
    server.on("GET", "/v1/prices", listed(PREMIUM_PRICE))
    server.on("POST", "/v1/subscription_schedules", recorded("subscription_schedule"))
    server.on("POST", "/v1/subscription_schedules/sub_sched_1Recorded001", recorded("subscription_schedule"))
    server.on("POST", f"/v1/subscriptions/{SUB}", subscription(metadata={"payql_pending_price_id": "plan_recorded_2"}))

    result = await gateway.change_plan(
        PlanChangeRequest(SUB, PREMIUM, ProrationMode.AT_PERIOD_END, idempotency_key="change-2")
    )

    assert result.price_id == "plan_recorded_1"
    assert result.pending_price_id == "plan_recorded_2"
    assert server.only("POST", "/v1/subscription_schedules").form == {"from_subscription": SUB}
    phases = server.only("POST", "/v1/subscription_schedules/sub_sched_1Recorded001").form
    assert phases["phases[0][items][0][price]"] == "price_1RecordedPrice001"
    assert phases["phases[0][end_date]"] == str(1764115200 + 30 * 86400)
    assert phases["phases[1][items][0][price]"] == "price_1RecordedPrice002"
    assert phases["phases[1][metadata][payql_pending_price_id]"] == ""
    assert phases["end_behavior"] == "release"
    assert server.only("POST", f"/v1/subscriptions/{SUB}").form["metadata[payql_pending_price_id]"] == "plan_recorded_2"
    assert len(set(keys_sent(server))) == 3


async def test_previewing_a_plan_change_changes_nothing(billing: tuple[RecordedStripe, StripeGateway]) -> None:
    server, gateway = billing
    server.on("GET", f"/v1/subscriptions/{SUB}", subscription())
    server.on("GET", "/v1/prices", listed(PREMIUM_PRICE))

    def preview(sent: RecordedRequest) -> Answer:
        immediate = sent.form["subscription_details[proration_behavior]"] == "always_invoice"
        amount = 1250 if immediate else 4000
        return Answer.json(
            200, recorded("invoice", id=None, status="draft", amount_due=amount, next_payment_attempt=1766707200)
        )

    server.on("POST", "/v1/invoices/create_preview", preview)

    result = await gateway.preview_plan_change(SUB, PREMIUM)

    assert result.amount_due_now == Money(1250, "EUR")
    assert result.next_invoice_amount == Money(4000, "EUR")
    assert result.next_invoice_at == 1766707200
    assert [r.path for r in server.requests if r.method == "POST"] == ["/v1/invoices/create_preview"] * 2


async def test_cancel_now_and_at_period_end(billing: tuple[RecordedStripe, StripeGateway]) -> None:
    server, gateway = billing
    server.on("DELETE", f"/v1/subscriptions/{SUB}", subscription(status="canceled", canceled_at=1764200000))
    server.on("POST", f"/v1/subscriptions/{SUB}", subscription(cancel_at_period_end=True))

    later = await gateway.cancel_subscription(SUB, at_period_end=True, idempotency_key="cancel-1")
    now = await gateway.cancel_subscription(SUB, at_period_end=False, idempotency_key="cancel-2")

    assert later.status is SubscriptionStatus.ACTIVE and later.cancel_at_period_end is True
    assert now.status is SubscriptionStatus.CANCELED and now.canceled_at == 1764200000
    assert server.only("POST", f"/v1/subscriptions/{SUB}").form["cancel_at_period_end"] == "true"
    assert server.only("DELETE", f"/v1/subscriptions/{SUB}").headers["idempotency-key"] == "cancel-2"


async def test_pause_is_paused_collection_and_resume_clears_it(billing: tuple[RecordedStripe, StripeGateway]) -> None:
    server, gateway = billing
    server.on("POST", f"/v1/subscriptions/{SUB}", subscription(pause_collection={"behavior": "void"}))

    paused = await gateway.pause_subscription(SUB, idempotency_key="pause-1")

    assert paused.status is SubscriptionStatus.PAUSED
    assert server.only("POST", f"/v1/subscriptions/{SUB}").form["pause_collection[behavior]"] == "void"

    server.on("GET", f"/v1/subscriptions/{SUB}", subscription(pause_collection={"behavior": "void"}))
    server.on("POST", f"/v1/subscriptions/{SUB}", subscription())
    resumed = await gateway.resume_subscription(SUB, idempotency_key="resume-1")

    assert resumed.status is SubscriptionStatus.ACTIVE
    assert server.sent("POST", f"/v1/subscriptions/{SUB}")[-1].form["pause_collection"] == ""


async def test_a_subscription_stripe_paused_is_resumed_with_stripes_resume(
    billing: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = billing
    server.on("GET", f"/v1/subscriptions/{SUB}", subscription(status="paused"))
    server.on("POST", f"/v1/subscriptions/{SUB}/resume", subscription())

    resumed = await gateway.resume_subscription(SUB, idempotency_key="resume-2")

    assert resumed.status is SubscriptionStatus.ACTIVE
    assert server.only("POST", f"/v1/subscriptions/{SUB}/resume").headers["idempotency-key"] == "resume-2"


async def test_paying_an_invoice_that_is_declined_again_leaves_it_open_with_the_decline(
    billing: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = billing
    server.on("POST", f"/v1/invoices/{INVOICE}/pay", card_declined("expired_card"))
    server.on("GET", f"/v1/invoices/{INVOICE}", invoice(status="open", attempt_count=3))
    server.on("GET", f"/v1/payment_intents/{INTENT}", intent("requires_payment_method"))

    result = await gateway.pay_invoice(INVOICE, idempotency_key="dunning-3")

    assert result.status is InvoiceStatus.OPEN
    assert result.decline_code == "expired_card"
    assert result.attempt_count == 3
    assert result.subscription_reference == SUB
    assert result.payql_subscription_id == "subs_recorded_1"
    assert server.only("POST", f"/v1/invoices/{INVOICE}/pay").headers["idempotency-key"] == "dunning-3"


async def test_paying_an_invoice_that_succeeds_is_paid(billing: tuple[RecordedStripe, StripeGateway]) -> None:
    server, gateway = billing
    server.on("POST", f"/v1/invoices/{INVOICE}/pay", invoice(status="paid", amount_paid=1500))

    result = await gateway.pay_invoice(INVOICE, idempotency_key="dunning-4")

    assert result.status is InvoiceStatus.PAID
    assert result.amount_paid == 1500
    assert result.amount_due == Money(1500, "EUR")
    # The service period is the line's, not Stripe's `period_*` (the period that just ended).
    assert (result.period_start, result.period_end) == (1764115200, 1764115200 + 30 * 86400)
    assert result.payment_reference == INTENT


async def test_a_new_default_payment_method_is_attached_then_set(billing: tuple[RecordedStripe, StripeGateway]) -> None:
    server, gateway = billing
    server.on("GET", f"/v1/subscriptions/{SUB}", subscription())
    server.on("POST", "/v1/payment_methods/pm_new/attach", recorded("payment_method", id="pm_new"))
    server.on("POST", f"/v1/subscriptions/{SUB}", subscription(default_payment_method="pm_new"))

    result = await gateway.update_default_payment_method(SUB, "pm_new", idempotency_key="method-1")

    assert result.default_payment_method == "pm_new"
    assert server.only("POST", "/v1/payment_methods/pm_new/attach").form == {"customer": "cus_1RecordedCust001"}
    assert server.only("POST", f"/v1/subscriptions/{SUB}").form["default_payment_method"] == "pm_new"
    assert keys_sent(server) == ["method-1-attach", "method-1"]


async def test_billing_now_follows_the_subscriptions_test_clock(billing: tuple[RecordedStripe, StripeGateway]) -> None:
    server, gateway = billing
    server.on("GET", f"/v1/subscriptions/{SUB}", subscription(test_clock=recorded("test_helpers.test_clock")))

    assert await gateway.billing_now(SUB) == 1764115200 + 45 * 86400
    assert server.only("GET", f"/v1/subscriptions/{SUB}").form == {"expand[0]": "test_clock"}


async def test_billing_now_without_a_test_clock_is_real_time(billing: tuple[RecordedStripe, StripeGateway]) -> None:
    server, gateway = billing
    server.on("GET", f"/v1/subscriptions/{SUB}", subscription())
    before = int(time.time())

    now = await gateway.billing_now(SUB)

    assert before <= now <= int(time.time())


async def test_a_read_is_stamped_with_the_time_it_was_read(billing: tuple[RecordedStripe, StripeGateway]) -> None:
    server, gateway = billing
    server.on("GET", f"/v1/subscriptions/{SUB}", subscription())
    before = int(time.time())

    result = await gateway.retrieve_subscription(SUB)

    assert before <= result.updated <= int(time.time())


async def test_paying_an_invoice_the_bank_wants_authenticated_hands_over_the_next_action(
    billing: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = billing
    server.on("POST", f"/v1/invoices/{INVOICE}/pay", card_declined("authentication_required"))
    server.on("GET", f"/v1/invoices/{INVOICE}", invoice(status="open"))
    server.on("GET", f"/v1/payment_intents/{INTENT}", intent("requires_action"))

    result = await gateway.pay_invoice(INVOICE, idempotency_key="dunning-5")

    assert result.status is InvoiceStatus.OPEN
    assert result.decline_code is None
    assert result.next_action is not None
    assert result.next_action.client_secret == "pi_3RecordedIntent0001_secret_invoice"


async def test_a_catalog_read_refused_for_our_credentials_is_a_configuration_error(
    billing: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = billing
    server.on("GET", "/v1/prices", listed())
    server.on(
        "GET", "/v1/products/.+", Answer.json(401, {"error": {"type": "invalid_request_error", "message": "bad"}})
    )

    with pytest.raises(GatewayConfigurationError):
        await gateway.create_subscription(request(gateway_customer="cus_1RecordedCust001"))

    assert server.sent("POST", "/v1/.*") == []
