"""The sandbox adapter's webhook side: signature verification, event interpretation, and the
reconciliation reads (`find_payment`, `list_payments`). Delivery is in processor/test_webhook_delivery.py."""

from __future__ import annotations

import hmac
import json
import time
from typing import Any

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, PaymentStatus, RefundStatus
from gateways.errors import PaymentDeclined, WebhookRejected
from gateways.sandbox import SandboxGateway
from gateways.sandbox.processor import SandboxProcessor
from gateways.stripe_signature import sign, signature
from gateways.types import (
    ChargeRequest,
    EventIgnored,
    PaymentObserved,
    RefundObserved,
    RefundRequest,
    VerifiedEvent,
    VoidRequest,
    WebhookDelivery,
)

BASE_URL = "https://pay.example.test"
SECRET = "whsec_current"
OLD_SECRET = "whsec_previous"


@pytest.fixture
def processor() -> SandboxProcessor:
    return SandboxProcessor()


@pytest.fixture
def gateway(processor: SandboxProcessor) -> SandboxGateway:
    return SandboxGateway(processor, BASE_URL, webhook_secrets=[SECRET])


def event_body(**overrides: Any) -> bytes:
    event: dict[str, Any] = {
        "id": "evt_sbx_1",
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": 1_700_000_000,
        "data": {"object": {}},
    }
    event.update(overrides)
    return json.dumps(event).encode()


def delivery(body: bytes, header: str | None, *, received_at: int | None = None) -> WebhookDelivery:
    headers = {"content-type": "application/json"}
    if header is not None:
        headers["stripe-signature"] = header
    return WebhookDelivery(headers=headers, body=body, received_at=received_at or int(time.time()))


def signed(body: bytes, *, secret: str = SECRET, at: int | None = None) -> WebhookDelivery:
    now = int(time.time())
    return delivery(body, sign(secret, now if at is None else at, body), received_at=now)


async def rejection(gateway: SandboxGateway, incoming: WebhookDelivery) -> str:
    with pytest.raises(WebhookRejected) as caught:
        await gateway.verify_webhook(incoming)
    return caught.value.reason


def charge_request(key: str, *, payment_method: str = "pm_card_visa", manual: bool = False) -> ChargeRequest:
    return ChargeRequest(
        amount=Money(2500, "EUR"),
        payment_method=payment_method,
        capture_method=CaptureMethod.MANUAL if manual else CaptureMethod.AUTOMATIC,
        idempotency_key=key,
        metadata={"payql_payment_id": f"pay_{key}", "payql_order_id": f"ord_{key}"},
    )


# -- signatures ------------------------------------------------------------------------------------


async def test_a_signed_delivery_verifies_into_its_event(gateway: SandboxGateway) -> None:
    body = event_body(id="evt_sbx_roundtrip", type="refund.created", created=1_700_000_123)

    event = await gateway.verify_webhook(signed(body))

    assert (event.event_id, event.event_type, event.created) == ("evt_sbx_roundtrip", "refund.created", 1_700_000_123)
    assert event.payload == json.loads(body)


def test_the_header_is_stripes_scheme() -> None:
    body = b'{"a":1}'
    header = sign("whsec_x", 1_700_000_000, body)
    timestamp, v1 = header.split(",")
    assert timestamp == "t=1700000000"
    assert v1 == "v1=" + signature("whsec_x", 1_700_000_000, body)
    assert (
        signature("whsec_x", 1_700_000_000, body) == hmac.new(b"whsec_x", b'1700000000.{"a":1}', "sha256").hexdigest()
    )
    assert len(v1.removeprefix("v1=")) == 64


async def test_a_forged_signature_is_rejected(gateway: SandboxGateway) -> None:
    now = int(time.time())
    reason = await rejection(gateway, delivery(event_body(), f"t={now},v1={'ab' * 32}"))
    assert "signature" in reason


async def test_a_tampered_body_is_rejected(gateway: SandboxGateway) -> None:
    now = int(time.time())
    header = sign(SECRET, now, event_body(type="payment_intent.created"))

    await rejection(gateway, delivery(event_body(type="payment_intent.succeeded"), header))


async def test_a_signature_with_another_secret_is_rejected(gateway: SandboxGateway) -> None:
    reason = await rejection(gateway, signed(event_body(), secret="whsec_someone_else"))
    assert "signature" in reason


async def test_a_rotated_secret_second_in_the_list_is_accepted(processor: SandboxProcessor) -> None:
    rotating = SandboxGateway(processor, BASE_URL, webhook_secrets=[SECRET, OLD_SECRET])

    event = await rotating.verify_webhook(signed(event_body(id="evt_sbx_old"), secret=OLD_SECRET))

    assert event.event_id == "evt_sbx_old"
    # The old secret is refused once it leaves the list.
    current_only = SandboxGateway(processor, BASE_URL, webhook_secrets=[SECRET])
    await rejection(current_only, signed(event_body(), secret=OLD_SECRET))


async def test_any_of_several_v1_entries_may_match(gateway: SandboxGateway) -> None:
    body = event_body(id="evt_sbx_multi")
    now = int(time.time())
    header = f"t={now},v1={signature('whsec_other', now, body)},v0=legacy,v1={signature(SECRET, now, body)}"

    event = await gateway.verify_webhook(delivery(body, header, received_at=now))

    assert event.event_id == "evt_sbx_multi"


async def test_a_stale_timestamp_is_rejected_even_with_a_good_signature(gateway: SandboxGateway) -> None:
    now = int(time.time())
    body = event_body()

    reason = await rejection(gateway, delivery(body, sign(SECRET, now - 301, body), received_at=now))
    assert "old" in reason
    # Just inside the window is fine.
    await gateway.verify_webhook(delivery(body, sign(SECRET, now - 300, body), received_at=now))


async def test_a_future_timestamp_is_rejected(gateway: SandboxGateway) -> None:
    now = int(time.time())
    body = event_body()

    reason = await rejection(gateway, delivery(body, sign(SECRET, now + 301, body), received_at=now))
    assert "future" in reason
    await gateway.verify_webhook(delivery(body, sign(SECRET, now + 300, body), received_at=now))


async def test_the_window_is_relative_to_when_the_delivery_was_received(gateway: SandboxGateway) -> None:
    body = event_body()
    signed_at = 1_600_000_000  # long ago, but received (and stored) right then: a replay from the store

    event = await gateway.verify_webhook(delivery(body, sign(SECRET, signed_at, body), received_at=signed_at + 5))

    assert event.event_id == "evt_sbx_1"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"\xff\xfe",
        b"[1, 2, 3]",
        b'"a string"',
        json.dumps({"type": "x", "created": 1}).encode(),
        json.dumps({"id": 7, "type": "x", "created": 1}).encode(),
        json.dumps({"id": "evt", "created": 1}).encode(),
        json.dumps({"id": "evt", "type": "x"}).encode(),
        json.dumps({"id": "evt", "type": "x", "created": "1700000000"}).encode(),
        json.dumps({"id": "evt", "type": "x", "created": True}).encode(),
    ],
)
async def test_a_well_signed_malformed_body_is_rejected(gateway: SandboxGateway, body: bytes) -> None:
    await rejection(gateway, signed(body))


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        "v1=" + "ab" * 32,  # no timestamp
        "t=,v1=" + "ab" * 32,
        "t=12ab,v1=" + "ab" * 32,
        "t=1,t=2,v1=" + "ab" * 32,
        "t={now}",  # no v1
        "t={now},v0=" + "ab" * 32,
        "t={now},v1=é" + "ab" * 32,
        "t={now}," + "v1=ab," * 1000,
    ],
)
async def test_a_missing_or_garbled_header_is_rejected(gateway: SandboxGateway, header: str | None) -> None:
    filled = None if header is None else header.replace("{now}", str(int(time.time())))
    await rejection(gateway, delivery(event_body(), filled))


async def test_header_names_are_matched_whatever_their_case(gateway: SandboxGateway) -> None:
    body = event_body()
    now = int(time.time())
    incoming = WebhookDelivery(headers={"Stripe-Signature": sign(SECRET, now, body)}, body=body, received_at=now)

    assert (await gateway.verify_webhook(incoming)).event_id == "evt_sbx_1"


async def test_without_a_configured_secret_nothing_verifies(processor: SandboxProcessor) -> None:
    unconfigured = SandboxGateway(processor, BASE_URL)

    reason = await rejection(unconfigured, signed(event_body()))
    assert "secret" in reason


def test_one_string_is_not_a_list_of_secrets(processor: SandboxProcessor) -> None:
    with pytest.raises(TypeError):
        SandboxGateway(processor, BASE_URL, webhook_secrets=SECRET)


# -- interpretation --------------------------------------------------------------------------------


async def events_by_type(processor: SandboxProcessor) -> dict[str, VerifiedEvent]:
    """The processor's recorded events as verified events, the last of each type."""
    found: dict[str, VerifiedEvent] = {}
    for raw in await processor.list_events():
        assert isinstance(raw["id"], str) and isinstance(raw["type"], str) and isinstance(raw["created"], int)
        found[raw["type"]] = VerifiedEvent(raw["id"], raw["type"], raw["created"], raw)
    return found


def observed(gateway: SandboxGateway, event: VerifiedEvent) -> PaymentObserved:
    effects = gateway.interpret_event(event)
    assert len(effects) == 1
    effect = effects[0]
    assert isinstance(effect, PaymentObserved), effect
    return effect


async def test_payment_intent_events_are_payment_observations(
    gateway: SandboxGateway, processor: SandboxProcessor
) -> None:
    paid = await gateway.charge(charge_request("auto"))
    held = await gateway.charge(charge_request("manual", manual=True))
    pending_3ds = await gateway.charge(charge_request("3ds", payment_method="pm_card_authenticationRequired"))
    events = await events_by_type(processor)

    created = observed(gateway, events["payment_intent.created"]).result
    assert created.reference == pending_3ds.reference  # the last intent created
    succeeded = observed(gateway, events["payment_intent.succeeded"]).result
    assert (succeeded.reference, succeeded.status) == (paid.reference, PaymentStatus.PAID)
    assert (succeeded.amount, succeeded.amount_captured) == (Money(2500, "EUR"), 2500)
    assert succeeded.payql_payment_id == "pay_auto"
    assert succeeded.created == paid.created and succeeded.created is not None
    capturable = observed(gateway, events["payment_intent.amount_capturable_updated"]).result
    assert (capturable.reference, capturable.status) == (held.reference, PaymentStatus.AUTHORIZED)
    assert capturable.amount_authorized == 2500
    action = observed(gateway, events["payment_intent.requires_action"]).result
    assert (action.reference, action.status) == (pending_3ds.reference, PaymentStatus.REQUIRES_ACTION)
    assert action.next_action is not None
    assert action.next_action.redirect_url == f"{BASE_URL}/sandbox/authenticate/{pending_3ds.reference}"

    await gateway.void(VoidRequest(held.reference, idempotency_key="void-1"))
    canceled = observed(gateway, (await events_by_type(processor))["payment_intent.canceled"]).result
    assert (canceled.reference, canceled.status) == (held.reference, PaymentStatus.CANCELED)


async def test_payment_failed_carries_the_decline(gateway: SandboxGateway, processor: SandboxProcessor) -> None:
    with pytest.raises(PaymentDeclined):
        await gateway.charge(charge_request("declined", payment_method="pm_card_chargeDeclinedInsufficientFunds"))

    failed = observed(gateway, (await events_by_type(processor))["payment_intent.payment_failed"]).result

    assert failed.status is PaymentStatus.FAILED
    assert failed.decline_code == "insufficient_funds"
    assert failed.payql_payment_id == "pay_declined"


async def test_processing_is_observed_as_processing(gateway: SandboxGateway, processor: SandboxProcessor) -> None:
    paid = await gateway.charge(charge_request("proc"))
    intent = (await processor.retrieve(paid.reference)).to_dict()
    intent.update(status="processing", amount_received=0)
    event = VerifiedEvent("evt_sbx_p", "payment_intent.processing", 1, {"data": {"object": intent}})

    assert observed(gateway, event).result.status is PaymentStatus.PROCESSING


async def test_refund_events(gateway: SandboxGateway, processor: SandboxProcessor) -> None:
    paid = await gateway.charge(charge_request("refund"))
    refund = await gateway.refund(RefundRequest(paid.reference, Money(1000, "EUR"), idempotency_key="r-1"))
    events = await events_by_type(processor)

    refunded = observed(gateway, events["charge.refunded"]).result
    assert (refunded.reference, refunded.status) == (paid.reference, PaymentStatus.PAID)
    assert (refunded.amount_captured, refunded.amount_refunded) == (2500, 1000)
    assert refunded.payql_payment_id == "pay_refund"

    for event_type in ("refund.created", "refund.updated"):
        event = events["refund.created"]
        effects = gateway.interpret_event(VerifiedEvent(event.event_id, event_type, event.created, event.payload))
        assert len(effects) == 1
        assert isinstance(effects[0], RefundObserved)
        result = effects[0].result
        assert (result.reference, result.payment_reference) == (refund.reference, paid.reference)
        assert (result.status, result.amount) == (RefundStatus.SUCCEEDED, Money(1000, "EUR"))


@pytest.mark.parametrize("event_type", ["customer.created", "payment_intent.partially_funded", "charge.succeeded"])
def test_unknown_event_types_are_ignored_with_a_reason(gateway: SandboxGateway, event_type: str) -> None:
    effects = gateway.interpret_event(VerifiedEvent("evt_sbx_u", event_type, 1, {"data": {"object": {}}}))

    assert len(effects) == 1
    assert isinstance(effects[0], EventIgnored)
    assert "unhandled event type" in effects[0].reason
    assert event_type in effects[0].reason


@pytest.mark.parametrize(
    ("event_type", "payload"),
    [
        ("payment_intent.succeeded", {}),
        ("payment_intent.succeeded", {"data": {"object": {"id": "pi_sbx_x"}}}),
        ("refund.created", {"data": {"object": {"id": "re_sbx_x", "amount": "ten"}}}),
    ],
)
def test_a_known_type_with_an_unreadable_object_is_ignored_not_guessed(
    gateway: SandboxGateway, event_type: str, payload: dict[str, Any]
) -> None:
    effects = gateway.interpret_event(VerifiedEvent("evt_sbx_m", event_type, 1, payload))

    assert len(effects) == 1
    assert isinstance(effects[0], EventIgnored)
    assert "evt_sbx_m" in effects[0].reason


# -- reconciliation reads --------------------------------------------------------------------------


async def test_find_payment_by_the_payql_payment_id_in_its_metadata(gateway: SandboxGateway) -> None:
    await gateway.charge(charge_request("one"))
    second = await gateway.charge(charge_request("two", manual=True))

    found = await gateway.find_payment("pay_two")

    assert found is not None
    assert (found.reference, found.status, found.payql_payment_id) == (
        second.reference,
        PaymentStatus.AUTHORIZED,
        "pay_two",
    )
    assert await gateway.find_payment("pay_nobody") is None


async def test_find_payment_finds_a_declined_payment(gateway: SandboxGateway) -> None:
    with pytest.raises(PaymentDeclined) as declined:
        await gateway.charge(charge_request("lost", payment_method="pm_card_chargeDeclined"))

    found = await gateway.find_payment("pay_lost")

    assert found is not None
    assert (found.reference, found.status) == (declined.value.reference, PaymentStatus.FAILED)


async def test_list_payments_created_since(gateway: SandboxGateway, processor: SandboxProcessor) -> None:
    early = await gateway.charge(charge_request("early"))
    cutoff = await processor.advance_clock(3600)
    late = await gateway.charge(charge_request("late"))
    refunded = await gateway.refund(RefundRequest(late.reference, Money(500, "EUR"), idempotency_key="r-late"))

    everything = await gateway.list_payments(0)
    recent = await gateway.list_payments(cutoff)

    assert [p.reference for p in everything] == [early.reference, late.reference]
    assert [p.reference for p in recent] == [late.reference]
    assert recent[0].created is not None and recent[0].created >= cutoff
    assert recent[0].amount_refunded == 500
    assert recent[0].payql_payment_id == "pay_late"
    assert refunded.payment_reference == late.reference
