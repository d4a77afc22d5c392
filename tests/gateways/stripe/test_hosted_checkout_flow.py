"""The hosted Checkout flow end to end through the use cases: checkout and payOrder with
`hostedCheckout`, the Stripe adapter talking HTTP to recorded answers, our database recording it.

The shopper is redirected to the session's URL and the payment stays REQUIRES_ACTION: coming back to
the success URL proves nothing; a read of the session (completePayment, or the pipeline after a webhook)
decides. A gateway without a hosted page refuses the flow with a clear error.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from db.models import Dispute, Order, Payment, WebhookEvent
from domain.statuses import CaptureMethod, OrderStatus, PaymentStatus
from gateways.registry import GatewayRegistry
from gateways.stripe.adapter import StripeGateway
from payql.wiring import Services
from resolvers.charging import HOSTED_CHECKOUT_METHOD, PaymentChoice
from resolvers.checkout import CartItem, CheckoutRequest, checkout
from resolvers.context import Caller, Deps, Principal
from resolvers.payments import PayOrderRequest, complete_payment, pay_order
from tests.gateways.stripe.recorded_stripe import RecordedStripe, recorded
from tests.gateways.stripe.servers import Answer, serve
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price, new_key
from webhooks.processing import apply_event
from webhooks.store import ClaimedEvent, RetryPolicy, claim_events

FIXTURES = Path(__file__).parents[2] / "fixtures" / "stripe"
SESSION_URL = "https://checkout.stripe.com/c/pay/cs_test_recorded0001"
RETURN_URL = "https://shop.example/orders/return?step=2"


@pytest.fixture
async def stripe_deps(services: Services) -> AsyncIterator[tuple[RecordedStripe, Deps]]:
    server = RecordedStripe()
    # A card payment creates the shopper's Stripe customer first (remembered after that).
    server.on("POST", "/v1/customers", recorded("customer", id=f"cus_{uuid.uuid4().hex[:14]}"))
    async with serve(server) as base_url:
        stripe = StripeGateway("sk_test_recorded_flow", webhook_secrets=["whsec_x"], base_url=base_url, timeout=5)
        yield server, dataclasses.replace(services.deps, gateways=GatewayRegistry([stripe]))
        await stripe.aclose()


async def claimed(**fields: Any) -> ClaimedEvent:
    """A stored event, taken for an attempt as a job takes it."""
    stored = await WebhookEvent.create(**fields)
    (row,) = await claim_events([stored.id], RetryPolicy())
    return row


def caller() -> Caller:
    subject = f"customer-{uuid.uuid4().hex[:10]}"
    return Caller(Principal(subject, email=f"{subject}@example.com"))


def new_session_id() -> str:
    # Gateway references are unique per gateway in our database, across the whole test session.
    return f"cs_test_{uuid.uuid4().hex}"


def hosted(capture: CaptureMethod = CaptureMethod.AUTOMATIC) -> PaymentChoice:
    return PaymentChoice("stripe", "", capture, hosted=True)


async def test_a_hosted_checkout_redirects_to_the_session_and_waits_for_the_truth(
    services: Services, stripe_deps: tuple[RecordedStripe, Deps]
) -> None:
    server, deps = stripe_deps
    session_id = new_session_id()
    server.on("POST", "/v1/checkout/sessions", recorded("checkout.session", id=session_id, url=SESSION_URL))
    mug = await make_price(1250, "USD", name="Mug")
    who = caller()

    outcome = await checkout(
        deps,
        who,
        CheckoutRequest([CartItem(str(mug.id), 2)], hosted(), idempotency_key=new_key(), return_url=RETURN_URL),
    )

    assert outcome.errors == []
    assert outcome.next_action is not None
    assert (outcome.next_action["type"], outcome.next_action["redirect_url"]) == ("REDIRECT", SESSION_URL)
    payment = await Payment.get(id=outcome.payment_id)
    assert payment.status is PaymentStatus.REQUIRES_ACTION
    assert payment.gateway_reference == session_id
    assert payment.payment_method == HOSTED_CHECKOUT_METHOD
    sent = server.only("POST", "/v1/checkout/sessions")
    assert sent.headers["idempotency-key"] == payment.idempotency_key
    assert sent.form["client_reference_id"] == str(payment.id)
    assert sent.form["payment_intent_data[metadata][payql_payment_id]"] == str(payment.id)
    assert sent.form["line_items[0][price_data][product_data][name]"] == "Mug"
    assert (sent.form["line_items[0][price_data][unit_amount]"], sent.form["line_items[0][quantity]"]) == (
        "1250",
        "2",
    )
    assert sent.form["success_url"] == f"{RETURN_URL}&payql_checkout=success"
    assert sent.form["cancel_url"] == f"{RETURN_URL}&payql_checkout=cancel"
    assert int(sent.form["expires_at"]) >= int(payment.created_at.timestamp()) + 1800

    # The shopper paid on Stripe's page; reading the session (here completePayment) says so.
    intent = recorded(
        "payment_intent", amount=2500, amount_received=2500, metadata={"payql_payment_id": str(payment.id)}
    )
    paid_session = recorded(
        "checkout.session",
        id=session_id,
        status="complete",
        payment_status="paid",
        amount_total=2500,
        payment_intent=intent,
    )
    server.on("GET", f"/v1/checkout/sessions/{session_id}", paid_session)

    completed = await complete_payment(deps, who, str(payment.id))

    assert completed.errors == []
    payment = await Payment.get(id=payment.id)
    assert payment.status is PaymentStatus.PAID
    assert payment.amount_captured == 2500
    assert (await Order.get(id=payment.order_id)).status is OrderStatus.PAID


async def test_a_hosted_checkout_needs_a_return_url(stripe_deps: tuple[RecordedStripe, Deps]) -> None:
    server, deps = stripe_deps
    mug = await make_price(1250, "USD")

    outcome = await checkout(
        deps, caller(), CheckoutRequest([CartItem(str(mug.id), 1)], hosted(), idempotency_key=new_key())
    )

    assert [(error.code, error.field) for error in outcome.errors] == [("INVALID_INPUT", "returnUrl")]
    assert server.requests == []


async def test_pay_order_can_switch_to_the_hosted_page_after_a_decline(
    stripe_deps: tuple[RecordedStripe, Deps],
) -> None:
    server, deps = stripe_deps
    declined = {
        "error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "generic_decline",
            "message": "Declined.",
        }
    }
    server.on("POST", "/v1/payment_intents", Answer.json(402, declined))
    server.on("POST", "/v1/checkout/sessions", recorded("checkout.session", id=new_session_id(), url=SESSION_URL))
    mug = await make_price(900, "USD")
    who = caller()
    first = await checkout(
        deps,
        who,
        CheckoutRequest(
            [CartItem(str(mug.id), 1)],
            PaymentChoice("stripe", "pm_card_visa", CaptureMethod.AUTOMATIC),
            idempotency_key=new_key(),
            return_url=RETURN_URL,
        ),
    )
    assert [error.code for error in first.errors] == ["CARD_DECLINED"]

    again = await pay_order(deps, who, PayOrderRequest(str(first.order_id), hosted(), idempotency_key=new_key()))

    assert again.errors == []
    assert again.next_action is not None and again.next_action["redirect_url"] == SESSION_URL
    assert server.only("POST", "/v1/checkout/sessions").form["line_items[0][price_data][unit_amount]"] == "900"


async def test_a_gateway_without_a_hosted_page_refuses_it(shopper: Shopper, http: httpx.AsyncClient) -> None:
    price = await make_price(1000, "USD")
    variables = {
        "input": {
            **checkout_input(price),
            "paymentMethod": "",
            "hostedCheckout": True,
            "returnUrl": "https://shop.example/x",
        }
    }

    payload = (await shopper.data(CHECKOUT, variables))["checkout"]

    assert [(e["code"], e["field"]) for e in payload["userErrors"]] == [("INVALID_INPUT", "hostedCheckout")]
    assert payload["payment"] is None


@pytest.mark.parametrize(
    ("event_type", "session_changes", "status"),
    [
        ("checkout.session.completed", {"status": "complete", "payment_status": "paid"}, PaymentStatus.PAID),
        ("checkout.session.expired", {"status": "expired", "payment_intent": None}, PaymentStatus.CANCELED),
    ],
)
async def test_the_checkout_webhook_is_applied_from_a_fresh_read_of_the_session(
    stripe_deps: tuple[RecordedStripe, Deps],
    event_type: str,
    session_changes: dict[str, object],
    status: PaymentStatus,
) -> None:
    server, deps = stripe_deps
    session_id = new_session_id()
    server.on("POST", "/v1/checkout/sessions", recorded("checkout.session", id=session_id, url=SESSION_URL))
    mug = await make_price(2000, "USD")
    outcome = await checkout(
        deps,
        caller(),
        CheckoutRequest([CartItem(str(mug.id), 1)], hosted(), idempotency_key=new_key(), return_url=RETURN_URL),
    )
    payment_id = str(outcome.payment_id)
    intent = recorded("payment_intent", metadata={"payql_payment_id": payment_id})
    read = recorded("checkout.session", id=session_id, **{"payment_intent": intent, **session_changes})
    server.on("GET", f"/v1/checkout/sessions/{session_id}", read)
    event = json.loads((FIXTURES / f"{event_type}.json").read_text())
    # The event's own copy says nothing was paid yet: what is applied is the read, not the copy.
    event["data"]["object"].update(id=session_id, client_reference_id=payment_id, metadata={}, status="open")
    row = await claimed(
        gateway="stripe", event_id=f"evt_{uuid.uuid4().hex}", event_type=event_type, body=json.dumps(event)
    )

    applied = await apply_event(row, deps.gateways.get("stripe"), deps.policy.billing)

    assert applied is True
    assert (await Payment.get(id=payment_id)).status is status
    assert len(server.sent("GET", f"/v1/checkout/sessions/{session_id}")) == 1


async def test_a_dispute_on_a_hosted_payment_is_found_through_the_read_of_the_dispute(
    stripe_deps: tuple[RecordedStripe, Deps],
) -> None:
    """Stripe's dispute event names only the payment intent's id, and a hosted payment is known to us
    by its session id: only the read of the dispute (its intent expanded, with our payment id in the
    metadata) can tell whose it is."""
    server, deps = stripe_deps
    session_id = new_session_id()
    server.on("POST", "/v1/checkout/sessions", recorded("checkout.session", id=session_id, url=SESSION_URL))
    mug = await make_price(3000, "USD")
    who = caller()
    outcome = await checkout(
        deps,
        who,
        CheckoutRequest([CartItem(str(mug.id), 1)], hosted(), idempotency_key=new_key(), return_url=RETURN_URL),
    )
    payment_id = str(outcome.payment_id)
    intent_id = f"pi_{uuid.uuid4().hex[:24]}"
    intent = recorded(
        "payment_intent", id=intent_id, amount=3000, amount_received=3000, metadata={"payql_payment_id": payment_id}
    )
    paid = recorded("checkout.session", id=session_id, status="complete", payment_status="paid", payment_intent=intent)
    server.on("GET", f"/v1/checkout/sessions/{session_id}", paid)
    assert (await complete_payment(deps, who, payment_id)).errors == []

    dispute_id = f"du_{uuid.uuid4().hex[:24]}"
    server.on(
        "GET",
        f"/v1/disputes/{dispute_id}",
        recorded("dispute", id=dispute_id, amount=3000, currency="usd", payment_intent=intent, status="needs_response"),
    )
    event = json.loads((FIXTURES / "charge.dispute.created.json").read_text())
    event["data"]["object"].update(id=dispute_id, payment_intent=intent_id, amount=3000, metadata={})
    row = await claimed(
        gateway="stripe",
        event_id=f"evt_{uuid.uuid4().hex}",
        event_type="charge.dispute.created",
        body=json.dumps(event),
    )

    assert await apply_event(row, deps.gateways.get("stripe"), deps.policy.billing) is True
    dispute = await Dispute.get(gateway="stripe", gateway_reference=dispute_id)
    assert str(dispute.payment_id) == payment_id
    assert (await Order.get(id=(await Payment.get(id=payment_id)).order_id)).status is OrderStatus.DISPUTED
