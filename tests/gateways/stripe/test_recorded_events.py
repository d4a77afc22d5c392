"""Recorded Stripe events (tests/fixtures/stripe/<event type>.json) for what localstripe cannot send.

Each fixture is an event envelope and object with the shape of Stripe's published examples (vendored
in tests/fixtures/stripe_openapi/, MIT); the fields a test depends on are set explicitly. They are
signed here with our secrets, then verified and interpreted by the adapter. What each one stands for:

- payment_intent.created                  — a new intent nobody tried to pay yet → PENDING (not FAILED)
- payment_intent.succeeded                — captured in full; `latest_charge` is an *id*, not expanded → PAID
- payment_intent.payment_failed           — issuer decline with `decline_code=insufficient_funds` → FAILED
- payment_intent.requires_action          — 3-D Secure via Stripe.js → REQUIRES_ACTION, CONFIRM_WITH_SDK
- payment_intent.amount_capturable_updated— manual capture authorized → AUTHORIZED
- payment_intent.processing               — an asynchronous method (SEPA) still deciding → PROCESSING
- payment_intent.canceled                 — a voided authorization → CANCELED
- charge.refunded                         — a charge, not an intent: mapped to its intent, re-read (stale)
- charge.refund.updated                   — a refund that failed after the fact → RefundObserved FAILED
- refund.created                          — a refund still pending → RefundObserved PENDING

The Billing, Checkout and dispute fixtures (`customer.subscription.*`, `invoice.*`, `charge.dispute.*`,
`checkout.session.*`) are described, and their effects tested, in `test_billing_events.py`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from domain.money import Money
from domain.statuses import NextActionType, PaymentStatus, RefundStatus
from gateways.errors import WebhookRejected
from gateways.stripe.adapter import StripeGateway
from gateways.stripe_signature import sign, signature
from gateways.types import EventIgnored, PaymentObserved, RefundObserved, WebhookDelivery

FIXTURES = Path(__file__).parents[2] / "fixtures" / "stripe"
REFERENCE = Path(__file__).parents[2] / "fixtures" / "stripe_openapi" / "fixtures3.json"
CURRENT = "whsec_recorded_current"
PREVIOUS = "whsec_recorded_previous"
NOW = 1_764_200_000

_OBJECT_KIND = {
    "payment_intent": "payment_intent",
    "charge.refunded": "charge",
    "charge.refund.updated": "refund",
    "refund.created": "refund",
    "charge.dispute": "dispute",
    "checkout.session": "checkout.session",
    "customer.subscription": "subscription",
    "invoice": "invoice",
}
ALL_FIXTURES = sorted(path.name.removesuffix(".json") for path in FIXTURES.glob("*.json"))


def _body(event_type: str) -> bytes:
    return (FIXTURES / f"{event_type}.json").read_bytes()


def _delivery(body: bytes, header: str | None, received_at: int = NOW) -> WebhookDelivery:
    headers = {"content-type": "application/json"}
    if header is not None:
        headers["stripe-signature"] = header
    return WebhookDelivery(headers=headers, body=body, received_at=received_at)


@pytest.fixture
async def gateway() -> AsyncIterator[StripeGateway]:
    # Verifying and interpreting never call Stripe: the base URL points nowhere.
    gateway = StripeGateway("sk_test_recorded", webhook_secrets=[CURRENT, PREVIOUS], base_url="http://127.0.0.1:9")
    yield gateway
    await gateway.aclose()


def test_there_is_one_fixture_per_event_type_and_each_is_named_after_its_type() -> None:
    assert len(ALL_FIXTURES) == 29
    for name in ALL_FIXTURES:
        assert json.loads(_body(name))["type"] == name


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_fixtures_keep_the_shape_of_stripes_published_examples(name: str) -> None:
    reference = json.loads(REFERENCE.read_text())["resources"]
    event = json.loads(_body(name))
    kind = _OBJECT_KIND.get(name) or _OBJECT_KIND.get(name.rsplit(".", 1)[0]) or _OBJECT_KIND[name.split(".")[0]]
    assert set(reference["event"]) <= set(event)
    assert set(reference[kind]) <= set(event["data"]["object"])
    assert event["data"]["object"]["object"] == reference[kind]["object"]


async def test_signed_with_the_current_secret_verifies(gateway: StripeGateway) -> None:
    body = _body("payment_intent.succeeded")

    event = await gateway.verify_webhook(_delivery(body, sign(CURRENT, NOW, body)))

    assert (event.event_id, event.event_type) == ("evt_1RecordedFixture0002", "payment_intent.succeeded")
    assert event.created == 1764115200
    assert event.payload == json.loads(body)


async def test_the_previous_secret_is_accepted_while_secrets_rotate(gateway: StripeGateway) -> None:
    body = _body("charge.refunded")
    assert (await gateway.verify_webhook(_delivery(body, sign(PREVIOUS, NOW, body)))).event_type == "charge.refunded"
    # During a rotation Stripe sends one v1 per secret; either may be ours.
    both = f"t={NOW},v1={signature('whsec_not_ours', NOW, body)},v1={signature(PREVIOUS, NOW, body)}"
    assert (await gateway.verify_webhook(_delivery(body, both))).event_id == "evt_1RecordedFixture0008"


@pytest.mark.parametrize(
    ("header", "received_at", "reason"),
    [
        (lambda body: sign(CURRENT, NOW - 301, body), NOW, "old"),
        (lambda body: sign(CURRENT, NOW + 301, body), NOW, "future"),
        (lambda body: sign("whsec_forged", NOW, body), NOW, "no v1 signature matches"),
        (lambda body: sign(CURRENT, NOW, body + b" "), NOW, "no v1 signature matches"),
        (lambda body: f"t={NOW}", NOW, "no v1"),
        (lambda body: "garbage", NOW, "garbled"),
        (lambda body: None, NOW, "missing"),
    ],
    ids=["stale", "future", "forged-secret", "body-changed", "no-v1", "garbled", "missing"],
)
async def test_untrustworthy_deliveries_are_rejected(
    gateway: StripeGateway, header: Any, received_at: int, reason: str
) -> None:
    body = _body("payment_intent.succeeded")

    with pytest.raises(WebhookRejected) as rejected:
        await gateway.verify_webhook(_delivery(body, header(body), received_at))

    assert reason in rejected.value.reason


async def test_within_the_five_minute_window_is_accepted(gateway: StripeGateway) -> None:
    body = _body("payment_intent.succeeded")
    for skew in (-300, 300):
        event = await gateway.verify_webhook(_delivery(body, sign(CURRENT, NOW + skew, body)))
        assert event.event_type == "payment_intent.succeeded"


async def test_a_gateway_without_secrets_refuses_everything() -> None:
    gateway = StripeGateway("sk_test_recorded", webhook_secrets=[], base_url="http://127.0.0.1:9")
    body = _body("payment_intent.succeeded")
    try:
        with pytest.raises(WebhookRejected, match="no webhook signing secret"):
            await gateway.verify_webhook(_delivery(body, sign(CURRENT, NOW, body)))
    finally:
        await gateway.aclose()


async def test_a_signed_body_that_is_not_an_event_is_rejected(gateway: StripeGateway) -> None:
    body = b'{"id": "evt_1", "type": "payment_intent.succeeded"}'

    with pytest.raises(WebhookRejected, match="created"):
        await gateway.verify_webhook(_delivery(body, sign(CURRENT, NOW, body)))


async def _interpret(gateway: StripeGateway, name: str) -> Any:
    body = _body(name)
    effects = gateway.interpret_event(await gateway.verify_webhook(_delivery(body, sign(CURRENT, NOW, body))))
    assert len(effects) == 1
    return effects[0]


@pytest.mark.parametrize(
    ("name", "status", "captured", "authorized"),
    [
        ("payment_intent.created", PaymentStatus.PENDING, 0, 0),
        ("payment_intent.succeeded", PaymentStatus.PAID, 2000, 2000),
        ("payment_intent.payment_failed", PaymentStatus.FAILED, 0, 0),
        ("payment_intent.requires_action", PaymentStatus.REQUIRES_ACTION, 0, 0),
        ("payment_intent.amount_capturable_updated", PaymentStatus.AUTHORIZED, 0, 2000),
        ("payment_intent.processing", PaymentStatus.PROCESSING, 0, 0),
        ("payment_intent.canceled", PaymentStatus.CANCELED, 0, 0),
    ],
)
async def test_payment_intent_events_are_payments_observed(
    gateway: StripeGateway, name: str, status: PaymentStatus, captured: int, authorized: int
) -> None:
    effect = await _interpret(gateway, name)

    assert isinstance(effect, PaymentObserved)
    assert effect.stale_possible is True
    result = effect.result
    assert result.reference == "pi_3RecordedIntent0001"
    assert result.status is status
    assert result.amount == Money(2000, "USD")
    assert (result.amount_captured, result.amount_authorized, result.amount_refunded) == (captured, authorized, 0)
    assert result.payql_payment_id == "pay_recorded_1"
    assert result.gateway_status == json.loads(_body(name))["data"]["object"]["status"]


async def test_payment_failed_carries_the_normalized_decline(gateway: StripeGateway) -> None:
    result = (await _interpret(gateway, "payment_intent.payment_failed")).result

    assert result.decline_code == "insufficient_funds"
    assert result.decline_message == "Your card has insufficient funds."


async def test_requires_action_hands_the_client_secret_to_stripe_js(gateway: StripeGateway) -> None:
    result = (await _interpret(gateway, "payment_intent.requires_action")).result

    assert result.next_action is not None
    assert result.next_action.type is NextActionType.CONFIRM_WITH_SDK
    assert result.next_action.client_secret == "pi_3RecordedIntent0001_secret_recorded"


async def test_charge_refunded_is_observed_on_its_intent_and_marked_stale(gateway: StripeGateway) -> None:
    effect = await _interpret(gateway, "charge.refunded")

    assert isinstance(effect, PaymentObserved)
    assert effect.stale_possible is True
    assert effect.result.reference == "pi_3RecordedIntent0001"
    assert effect.result.status is PaymentStatus.PAID
    assert (effect.result.amount_captured, effect.result.amount_refunded) == (2000, 500)
    assert effect.result.payql_payment_id == "pay_recorded_1"


async def test_refund_events_are_refunds_observed(gateway: StripeGateway) -> None:
    failed = await _interpret(gateway, "charge.refund.updated")
    assert isinstance(failed, RefundObserved)
    assert failed.result.reference == "re_3RecordedRefund0001"
    assert failed.result.payment_reference == "pi_3RecordedIntent0001"
    assert failed.result.status is RefundStatus.FAILED
    assert failed.result.failure_reason == "expired_or_canceled_card"
    assert failed.result.amount == Money(500, "USD")

    pending = await _interpret(gateway, "refund.created")
    assert isinstance(pending, RefundObserved)
    assert pending.result.status is RefundStatus.PENDING


@pytest.mark.parametrize("name", ["customer.created", "invoice.created", "charge.dispute.other"])
async def test_events_we_do_not_act_on_are_ignored_with_a_reason(gateway: StripeGateway, name: str) -> None:
    event = json.loads(_body("customer.subscription.updated"))
    event["type"] = name
    body = json.dumps(event).encode()

    [effect] = gateway.interpret_event(await gateway.verify_webhook(_delivery(body, sign(CURRENT, NOW, body))))

    assert isinstance(effect, EventIgnored)
    assert name in effect.reason


async def test_a_verified_event_with_an_unreadable_object_is_ignored_not_fatal(gateway: StripeGateway) -> None:
    event = json.loads(_body("payment_intent.succeeded"))
    event["data"]["object"]["amount"] = "2000"  # a string where Stripe sends an integer
    body = json.dumps(event).encode()

    [effect] = gateway.interpret_event(await gateway.verify_webhook(_delivery(body, sign(CURRENT, NOW, body))))

    assert isinstance(effect, EventIgnored)
    assert "unreadable" in effect.reason
