"""Braintree webhook deliveries as Braintree posts them: form-encoded `bt_signature` / `bt_payload`, built with the
SDK's own `webhook_testing.sample_notification` and the emulator's keys; verification through the SDK's parser
with every configured key pair, and each notification kind mapped."""

from __future__ import annotations

import time
from urllib.parse import urlencode

import pytest

from gateways.braintree.adapter import BraintreeGateway
from gateways.braintree.sdk import braintree
from gateways.braintree.webhooks import BraintreeDeliveryVerifier
from gateways.errors import WebhookRejected
from gateways.types import DisputeObserved, EventIgnored, PaymentObserved, SubscriptionObserved, WebhookDelivery
from tests.braintree_emulator import BraintreeEmulator
from tests.gateways.braintree.conftest import make_gateway

Kind = braintree.WebhookNotification.Kind


def delivery(notification: dict[str, object], *, received_at: int | None = None) -> WebhookDelivery:
    """The POST Braintree makes: application/x-www-form-urlencoded bt_signature and bt_payload."""
    body = urlencode(notification).encode()
    headers = {"content-type": "application/x-www-form-urlencoded"}
    return WebhookDelivery(headers, body, received_at or int(time.time()))


def sample(emulator: BraintreeEmulator, kind: str, subject_id: str, **keys: str) -> dict[str, object]:
    sample_notification: dict[str, object] = emulator.sdk(**keys).webhook_testing.sample_notification(kind, subject_id)
    return sample_notification


async def test_a_settled_transaction_is_observed_and_re_read(
    gateway: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    event = await gateway.verify_webhook(delivery(sample(emulator, Kind.TransactionSettled, "txn_1")))
    assert event.event_type == "transaction_settled"
    [effect] = gateway.interpret_event(event)
    assert isinstance(effect, PaymentObserved) and effect.stale_possible
    assert effect.result.reference == "txn_1"


@pytest.mark.parametrize(
    "kind", [Kind.DisputeOpened, Kind.DisputeLost, Kind.DisputeWon, Kind.DisputeAccepted, Kind.DisputeExpired]
)
async def test_dispute_notifications_are_observed(
    gateway: BraintreeGateway, emulator: BraintreeEmulator, kind: str
) -> None:
    event = await gateway.verify_webhook(delivery(sample(emulator, kind, "dp_1")))
    [effect] = gateway.interpret_event(event)
    assert isinstance(effect, DisputeObserved) and effect.stale_possible
    assert effect.result.reference == "dp_1"


@pytest.mark.parametrize(
    "kind",
    [
        Kind.SubscriptionChargedSuccessfully,
        Kind.SubscriptionChargedUnsuccessfully,
        Kind.SubscriptionWentPastDue,
        Kind.SubscriptionCanceled,
        Kind.SubscriptionExpired,
        Kind.SubscriptionWentActive,
    ],
)
async def test_subscription_notifications_are_observed_and_re_read(
    gateway: BraintreeGateway, emulator: BraintreeEmulator, kind: str
) -> None:
    event = await gateway.verify_webhook(delivery(sample(emulator, kind, "sub_1")))
    [effect] = gateway.interpret_event(event)
    assert isinstance(effect, SubscriptionObserved) and effect.stale_possible
    assert (effect.result.reference, effect.result.payql_subscription_id) == ("sub_1", "sub_1")


@pytest.mark.parametrize("kind", [Kind.Check, Kind.Disbursement])
async def test_other_notifications_are_ignored(
    gateway: BraintreeGateway, emulator: BraintreeEmulator, kind: str
) -> None:
    event = await gateway.verify_webhook(delivery(sample(emulator, kind, "sub_1")))
    assert all(isinstance(effect, EventIgnored) for effect in gateway.interpret_event(event))


async def test_the_stored_body_reads_back_as_the_verified_payload(
    gateway: BraintreeGateway, emulator: BraintreeEmulator
) -> None:
    posted = delivery(sample(emulator, Kind.TransactionSettled, "txn_2"))
    event = await gateway.verify_webhook(posted)
    assert gateway.stored_payload(posted.body.decode()) == event.payload
    assert event.payload["created"] == event.created


async def test_a_redelivery_has_the_same_event_id(gateway: BraintreeGateway, emulator: BraintreeEmulator) -> None:
    notification = sample(emulator, Kind.TransactionSettled, "txn_3")
    first = await gateway.verify_webhook(delivery(notification))
    again = await gateway.verify_webhook(delivery(notification))
    other = await gateway.verify_webhook(delivery(sample(emulator, Kind.TransactionSettled, "txn_4")))
    assert first.event_id == again.event_id != other.event_id


async def test_keys_rotate(emulator: BraintreeEmulator) -> None:
    """During a rotation the previous pair still verifies; a pair nobody configured never does."""
    rotated = make_gateway(
        emulator, webhook_keys=[(emulator.public_key, emulator.private_key), ("pub_old", "priv_old")]
    )
    old = sample(emulator, Kind.TransactionSettled, "txn_5", public_key="pub_old", private_key="priv_old")
    assert (await rotated.verify_webhook(delivery(old))).event_type == "transaction_settled"
    stranger = sample(emulator, Kind.TransactionSettled, "txn_5", public_key="pub_x", private_key="priv_x")
    with pytest.raises(WebhookRejected):
        await rotated.verify_webhook(delivery(stranger))
    # The same public key with another private key (a forger who knows the public one) is refused too.
    forged = sample(emulator, Kind.TransactionSettled, "txn_5", private_key="not-ours")
    with pytest.raises(WebhookRejected):
        await rotated.verify_webhook(delivery(forged))
    await rotated.aclose()


async def test_a_tampered_payload_is_rejected(gateway: BraintreeGateway, emulator: BraintreeEmulator) -> None:
    genuine = sample(emulator, Kind.TransactionSettled, "txn_6")
    other = sample(emulator, Kind.DisputeWon, "dp_6")
    with pytest.raises(WebhookRejected):
        await gateway.verify_webhook(
            delivery({"bt_signature": genuine["bt_signature"], "bt_payload": other["bt_payload"]})
        )


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b'{"kind": "transaction_settled"}',
        b"bt_signature=a",
        b"bt_payload=abc",
        b"\xff\xfe",
        b"bt_signature=a&bt_payload=*",
    ],
)
async def test_a_malformed_body_is_rejected(gateway: BraintreeGateway, body: bytes) -> None:
    with pytest.raises(WebhookRejected):
        await gateway.verify_webhook(WebhookDelivery({}, body, int(time.time())))


async def test_an_old_notification_is_rejected(gateway: BraintreeGateway, emulator: BraintreeEmulator) -> None:
    notification = sample(emulator, Kind.TransactionSettled, "txn_7")
    three_days_later = int(time.time()) + 3 * 24 * 3600
    with pytest.raises(WebhookRejected):
        await gateway.verify_webhook(delivery(notification, received_at=three_days_later))


async def test_the_package_verifier_uses_the_settings_key_pairs(emulator: BraintreeEmulator) -> None:
    verifier = BraintreeDeliveryVerifier([("pub_a", "priv_a")])
    notification = sample(emulator, Kind.TransactionSettled, "txn_8", public_key="pub_a", private_key="priv_a")
    assert (await verifier.verify_webhook(delivery(notification))).event_type == "transaction_settled"
