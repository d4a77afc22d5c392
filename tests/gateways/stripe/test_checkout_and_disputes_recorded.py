"""Hosted Checkout Sessions and disputes through the real SDK over HTTP, against recorded answers.

localstripe has neither, so `recorded_stripe.py` answers with recorded Checkout Session and Dispute
objects; the tests check the adapter's reading of them and what the SDK sent.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, DisputeStatus, NextActionType, PaymentStatus
from gateways.errors import InvalidGatewayRequest
from gateways.hosted import HostedCheckoutGateway, HostedCheckoutRequest, HostedLineItem
from gateways.stripe.adapter import StripeGateway
from gateways.types import DisputeEvidence, RefundRequest, VoidRequest
from tests.gateways.stripe.recorded_stripe import RecordedStripe, listed, recorded
from tests.gateways.stripe.servers import serve

SESSION = "cs_test_recorded0001"
INTENT = "pi_3RecordedIntent0001"
DISPUTE = "dp_1RecordedDispute001"
STARTED_AT = 1764115200


@pytest.fixture
async def stripe_server() -> AsyncIterator[tuple[RecordedStripe, StripeGateway]]:
    server = RecordedStripe()
    async with serve(server) as base_url:
        gateway = StripeGateway(
            "sk_test_recorded_checkout",
            webhook_secrets=["whsec_x"],
            base_url=base_url,
            timeout=5,
            checkout_expiry_seconds=3600,
        )
        yield server, gateway
        await gateway.aclose()


def hosted_request(**changes: object) -> HostedCheckoutRequest:
    values: dict[str, object] = {
        "amount": Money(2000, "USD"),
        "line_items": (
            HostedLineItem("T-shirt", Money(500, "USD"), 2),
            HostedLineItem("Mug", Money(1000, "USD"), 1),
        ),
        "capture_method": CaptureMethod.AUTOMATIC,
        "idempotency_key": "payql-payment-pay_recorded_1-1",
        "success_url": "https://shop.example/orders/1?payql_checkout=success",
        "cancel_url": "https://shop.example/orders/1?payql_checkout=cancel",
        "started_at": STARTED_AT,
        "description": "Order ord_recorded_1",
        "metadata": {"payql_payment_id": "pay_recorded_1", "payql_order_id": "ord_recorded_1"},
    }
    return HostedCheckoutRequest(**{**values, **changes})  # type: ignore[arg-type]


def test_the_stripe_gateway_offers_a_hosted_checkout() -> None:
    assert isinstance(StripeGateway("sk_test_x", webhook_secrets=[]), HostedCheckoutGateway)


def test_the_checkout_expiry_must_be_within_stripes_limits() -> None:
    for seconds in (1799, 86401):
        with pytest.raises(ValueError, match="1800 to 86400"):
            StripeGateway("sk_test_x", webhook_secrets=[], checkout_expiry_seconds=seconds)


async def test_a_hosted_checkout_is_a_session_to_redirect_to(
    stripe_server: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = stripe_server
    server.on("POST", "/v1/checkout/sessions", recorded("checkout.session"))

    result = await gateway.create_hosted_checkout(hosted_request())

    assert result.reference == SESSION
    assert result.status is PaymentStatus.REQUIRES_ACTION
    assert result.next_action is not None
    assert result.next_action.type is NextActionType.REDIRECT
    assert result.next_action.redirect_url == "https://checkout.stripe.com/c/pay/cs_test_recorded0001"
    assert result.payql_payment_id == "pay_recorded_1"
    sent = server.only("POST", "/v1/checkout/sessions")
    assert sent.headers["idempotency-key"] == "payql-payment-pay_recorded_1-1"
    form = sent.form
    assert form["mode"] == "payment"
    assert form["expires_at"] == str(STARTED_AT + 3600 + 300)
    assert form["client_reference_id"] == "pay_recorded_1"
    assert form["metadata[payql_payment_id]"] == "pay_recorded_1"
    assert form["payment_intent_data[metadata][payql_payment_id]"] == "pay_recorded_1"
    assert form["payment_intent_data[capture_method]"] == "automatic"
    assert form["success_url"] == "https://shop.example/orders/1?payql_checkout=success"
    assert form["cancel_url"] == "https://shop.example/orders/1?payql_checkout=cancel"
    assert form["line_items[0][price_data][product_data][name]"] == "T-shirt"
    assert (form["line_items[0][price_data][unit_amount]"], form["line_items[0][quantity]"]) == ("500", "2")
    assert form["line_items[1][price_data][currency]"] == "usd"


async def test_lines_that_do_not_add_up_are_refused_before_calling_stripe(
    stripe_server: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = stripe_server

    with pytest.raises(InvalidGatewayRequest):
        await gateway.create_hosted_checkout(hosted_request(amount=Money(2500, "USD")))

    assert server.requests == []


async def test_a_completed_session_is_read_through_its_payment_intent(
    stripe_server: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = stripe_server
    intent = recorded("payment_intent", metadata={"payql_payment_id": "pay_recorded_1"})
    server.on(
        "GET",
        f"/v1/checkout/sessions/{SESSION}",
        recorded("checkout.session", status="complete", payment_status="paid", payment_intent=intent),
    )

    result = await gateway.retrieve(SESSION)

    assert result.reference == SESSION
    assert result.status is PaymentStatus.PAID
    assert (result.amount_captured, result.amount) == (2000, Money(2000, "USD"))
    assert result.next_action is None
    assert server.only("GET", f"/v1/checkout/sessions/{SESSION}").form == {
        "expand[0]": "payment_intent",
        "expand[1]": "payment_intent.latest_charge",
    }


@pytest.mark.parametrize(
    ("intent_changes", "status"),
    [
        (None, PaymentStatus.CANCELED),
        (
            {
                "status": "requires_payment_method",
                "last_payment_error": {"code": "card_declined", "decline_code": "generic_decline", "message": "No."},
            },
            PaymentStatus.FAILED,
        ),
    ],
    ids=["abandoned", "declined"],
)
async def test_an_expired_session_is_canceled_or_failed(
    stripe_server: tuple[RecordedStripe, StripeGateway], intent_changes: dict[str, object] | None, status: PaymentStatus
) -> None:
    server, gateway = stripe_server
    intent = recorded("payment_intent", **intent_changes) if intent_changes else None
    server.on(
        "GET", f"/v1/checkout/sessions/{SESSION}", recorded("checkout.session", status="expired", payment_intent=intent)
    )

    result = await gateway.retrieve(SESSION)

    assert result.status is status


async def test_refunds_of_a_hosted_payment_go_to_its_payment_intent(
    stripe_server: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = stripe_server
    server.on(
        "GET",
        f"/v1/checkout/sessions/{SESSION}",
        recorded("checkout.session", status="complete", payment_intent=INTENT),
    )
    refund = {
        "id": "re_1",
        "object": "refund",
        "amount": 500,
        "currency": "usd",
        "payment_intent": INTENT,
        "status": "succeeded",
    }
    server.on("POST", "/v1/refunds", refund)

    result = await gateway.refund(RefundRequest(SESSION, Money(500, "USD"), idempotency_key="refund-1"))

    assert result.payment_reference == INTENT
    assert server.only("POST", "/v1/refunds").form == {"payment_intent": INTENT, "amount": "500"}


async def test_voiding_an_open_session_expires_it(stripe_server: tuple[RecordedStripe, StripeGateway]) -> None:
    server, gateway = stripe_server
    server.on("GET", f"/v1/checkout/sessions/{SESSION}", recorded("checkout.session"))
    server.on("POST", f"/v1/checkout/sessions/{SESSION}/expire", recorded("checkout.session", status="expired"))

    result = await gateway.void(VoidRequest(SESSION, idempotency_key="void-1"))

    assert result.status is PaymentStatus.CANCELED
    assert server.only("POST", f"/v1/checkout/sessions/{SESSION}/expire").headers["idempotency-key"] == "void-1"


async def test_a_dispute_is_read_with_our_payment_id_from_its_intent(
    stripe_server: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = stripe_server
    intent = recorded("payment_intent", metadata={"payql_payment_id": "pay_recorded_1"})
    server.on(
        "GET", f"/v1/disputes/{DISPUTE}", recorded("dispute", status="warning_needs_response", payment_intent=intent)
    )

    result = await gateway.retrieve_dispute(DISPUTE)

    assert result.status is DisputeStatus.NEEDS_RESPONSE
    assert result.payment_reference == INTENT
    assert result.payql_payment_id == "pay_recorded_1"
    assert result.amount == Money(2000, "USD")
    assert result.reason == "fraudulent"
    assert result.evidence_due_by == STARTED_AT + 7 * 86400
    assert server.only("GET", f"/v1/disputes/{DISPUTE}").form == {"expand[0]": "payment_intent"}


async def test_evidence_is_sent_and_submitted(stripe_server: tuple[RecordedStripe, StripeGateway]) -> None:
    server, gateway = stripe_server
    server.on("POST", f"/v1/disputes/{DISPUTE}", recorded("dispute", status="under_review"))
    evidence = DisputeEvidence(
        product_description="A blue mug",
        customer_email_address="shopper@example.com",
        shipping_tracking_number="1Z999",
    )

    result = await gateway.submit_dispute_evidence(DISPUTE, evidence)
    await gateway.submit_dispute_evidence(DISPUTE, evidence)
    await gateway.submit_dispute_evidence(DISPUTE, dataclasses.replace(evidence, shipping_tracking_number="1Z998"))

    assert result.status is DisputeStatus.UNDER_REVIEW
    first, retry, other = (sent.headers["idempotency-key"] for sent in server.sent("POST", f"/v1/disputes/{DISPUTE}"))
    assert first == retry != other
    assert first.startswith(f"payql-dispute-{DISPUTE}-evidence-")
    assert server.sent("POST", f"/v1/disputes/{DISPUTE}")[0].form == {
        "evidence[product_description]": "A blue mug",
        "evidence[customer_email_address]": "shopper@example.com",
        "evidence[shipping_tracking_number]": "1Z999",
        "submit": "true",
        "expand[0]": "payment_intent",
    }


async def test_reconciliation_lists_a_hosted_payment_once_as_its_session(
    stripe_server: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = stripe_server
    hosted_intent = recorded("payment_intent", created=STARTED_AT, metadata={"payql_payment_id": "pay_recorded_1"})
    card_intent = recorded(
        "payment_intent", id="pi_3RecordedIntent0002", created=STARTED_AT, metadata={"payql_payment_id": "pay_card"}
    )
    unpaid = recorded("checkout.session", id="cs_test_unpaid", client_reference_id="pay_unpaid", metadata={})
    paid = recorded("checkout.session", status="complete", payment_status="paid", payment_intent=hosted_intent)
    server.on("GET", "/v1/payment_intents", listed(hosted_intent, card_intent))
    server.on("GET", "/v1/checkout/sessions", listed(paid, unpaid))

    results = await gateway.list_payments(STARTED_AT - 60)

    assert sorted((r.reference, r.payql_payment_id, r.status) for r in results) == [
        ("cs_test_recorded0001", "pay_recorded_1", PaymentStatus.PAID),
        ("cs_test_unpaid", "pay_unpaid", PaymentStatus.REQUIRES_ACTION),
        ("pi_3RecordedIntent0002", "pay_card", PaymentStatus.PAID),
    ]
    assert server.only("GET", "/v1/checkout/sessions").form["created[gte]"] == str(STARTED_AT - 60)


async def test_a_lost_answer_for_an_unpaid_hosted_payment_is_found_as_its_session(
    stripe_server: tuple[RecordedStripe, StripeGateway],
) -> None:
    server, gateway = stripe_server
    server.on("GET", "/v1/payment_intents/search", listed())
    server.on("GET", "/v1/payment_intents", listed())
    server.on("GET", "/v1/checkout/sessions", listed(recorded("checkout.session")))

    found = await gateway.find_payment("pay_recorded_1")

    assert found is not None
    assert (found.reference, found.status) == (SESSION, PaymentStatus.REQUIRES_ACTION)
