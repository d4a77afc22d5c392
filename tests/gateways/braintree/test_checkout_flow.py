"""Braintree through PayQL end to end, on the running server with a Braintree gateway pointed at the emulator:
a checkout with a Drop-in nonce, the settlement webhook (form-encoded, stored and read back by the adapter), a
refund, declines and 3-D Secure as GraphQL errors, and a dispute mirrored, answered with evidence and won."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from braintree.test.nonces import Nonces

from db.models import Dispute, Order, Payment, WebhookEvent, WebhookStatus
from gateways.braintree.adapter import BraintreeGateway
from gateways.braintree.sdk import braintree
from payql.wiring import Services
from tests.braintree_emulator import BraintreeEmulator
from tests.gateways.braintree.conftest import make_gateway, settle
from tests.resolvers.test_disputes import SUBMIT
from tests.testkit import CHECKOUT, Shopper, checkout_input, eventually, make_price, new_key
from tests.testkit import settle as settle_jobs

Kind = braintree.WebhookNotification.Kind
REFUND = """mutation($input: RefundPaymentInput!) { refundPayment(input: $input) {
  refund { id status } payment { amountRefunded { amount } } userErrors { code message } } }"""


@pytest.fixture
async def braintree_in_payql(
    emulator: BraintreeEmulator, services: Services, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BraintreeGateway]:
    gateway = make_gateway(emulator)
    # The session's server was configured with the sandbox only; add Braintree for this test.
    monkeypatch.setitem(services.deps.gateways._gateways, "braintree", gateway)
    yield gateway
    await settle_jobs(services)
    await gateway.aclose()


async def checkout(shopper: Shopper, nonce: str, amount: int = 4_250) -> dict[str, Any]:
    price = await make_price(amount)
    variables = {"input": checkout_input(price, nonce) | {"gateway": "braintree"}}
    result: dict[str, Any] = (await shopper.data(CHECKOUT, variables))["checkout"]
    return result


async def post_notification(server: str, emulator: BraintreeEmulator, kind: str, subject_id: str) -> httpx.Response:
    """Braintree's POST: form-encoded bt_signature and bt_payload, signed with the account's key pair."""
    return await post_form(server, emulator.sdk().webhook_testing.sample_notification(kind, subject_id))


async def post_form(server: str, notification: dict[str, str | bytes]) -> httpx.Response:
    # The SDK's helper gives the payload as bytes; Braintree posts it as form text.
    form = {name: value.decode() if isinstance(value, bytes) else value for name, value in notification.items()}
    async with httpx.AsyncClient() as client:
        return await client.post(f"{server}/webhooks/braintree", data=form)


async def test_checkout_settlement_webhook_and_refund(
    braintree_in_payql: BraintreeGateway,
    emulator: BraintreeEmulator,
    shopper: Shopper,
    admin: Shopper,
    server: str,
    services: Services,
) -> None:
    started = await checkout(shopper, Nonces.Transactable)
    assert started["userErrors"] == [] and started["order"]["status"] == "PAID"
    payment = await Payment.get(id=started["payment"]["id"])
    assert (payment.status, payment.amount_captured) == ("PAID", 4_250)
    sale = emulator.ledger.transactions[payment.gateway_reference or ""]
    assert (sale["order_id"], sale["amount"], sale["status"]) == (str(payment.id), "42.50", "submitted_for_settlement")

    await settle(emulator, sale["id"])
    answered = await post_notification(server, emulator, Kind.TransactionSettled, sale["id"])
    assert answered.status_code == 200 and answered.json() == {"received": True, "duplicate": False}
    again = await post_notification(server, emulator, Kind.TransactionSettled, sale["id"])
    assert again.status_code == 200

    async def processed() -> bool:
        await settle_jobs(services)
        events = await WebhookEvent.filter(gateway="braintree", event_type="transaction_settled")
        return bool(events) and all(e.status is WebhookStatus.PROCESSED for e in events)

    await eventually(processed)

    variables = {
        "input": {"paymentId": str(payment.id), "amount": 1_000, "reason": "damaged", "idempotencyKey": new_key()}
    }
    refunded = (await admin.data(REFUND, variables))["refundPayment"]
    assert refunded["userErrors"] == []
    assert refunded["refund"]["status"] == "SUCCEEDED"
    assert refunded["payment"]["amountRefunded"]["amount"] == 1_000
    credits = [t for t in emulator.ledger.transactions.values() if t["type"] == "credit"]
    assert [(c["refunded_transaction_id"], c["amount"]) for c in credits] == [(sale["id"], "10.00")]


async def test_a_forged_notification_is_refused(
    braintree_in_payql: BraintreeGateway, emulator: BraintreeEmulator, server: str
) -> None:
    forged = emulator.sdk(private_key="not-the-account's").webhook_testing.sample_notification(Kind.DisputeWon, "x")
    assert (await post_form(server, forged)).status_code == 400


async def test_a_declined_card_is_a_graphql_error(
    braintree_in_payql: BraintreeGateway, emulator: BraintreeEmulator, shopper: Shopper
) -> None:
    declined = await checkout(shopper, Nonces.ProcessorDeclinedVisa)
    assert [e["code"] for e in declined["userErrors"]] == ["CARD_DECLINED"]
    payment = await Payment.get(id=declined["payment"]["id"])
    assert (payment.status, payment.decline_code) == ("FAILED", "generic_decline")
    assert payment.gateway_reference in emulator.ledger.transactions


async def test_three_d_secure_required_asks_for_verification(
    emulator: BraintreeEmulator, services: Services, shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    gateway = make_gateway(emulator, three_d_secure_required=True)
    monkeypatch.setitem(services.deps.gateways._gateways, "braintree", gateway)
    try:
        unverified = await checkout(shopper, Nonces.Transactable)
        assert [e["code"] for e in unverified["userErrors"]] == ["AUTHENTICATION_REQUIRED"]
        verified = await checkout(shopper, Nonces.ThreeDSecureVisaFullAuthentication)
        assert verified["userErrors"] == [] and verified["order"]["status"] == "PAID"
    finally:
        await gateway.aclose()


async def test_a_dispute_is_mirrored_answered_with_evidence_and_won(
    braintree_in_payql: BraintreeGateway,
    emulator: BraintreeEmulator,
    shopper: Shopper,
    admin: Shopper,
    server: str,
    services: Services,
) -> None:
    started = await checkout(shopper, Nonces.Transactable)
    payment = await Payment.get(id=started["payment"]["id"])
    opened = emulator.ledger.open_dispute(emulator.ledger.transactions[payment.gateway_reference or ""])
    assert (await post_notification(server, emulator, Kind.DisputeOpened, opened["id"])).status_code == 200

    async def mirrored() -> bool:
        await settle_jobs(services)
        return await Dispute.exists(gateway="braintree", gateway_reference=opened["id"])

    await eventually(mirrored)
    dispute = await Dispute.get(gateway="braintree", gateway_reference=opened["id"])
    assert (dispute.payment_id, dispute.status, dispute.reason, dispute.amount) == (
        payment.id,
        "NEEDS_RESPONSE",
        "fraud",
        4_250,
    )
    assert dispute.evidence_due_by is not None
    assert (await Order.get(id=payment.order_id)).status == "DISPUTED"

    submit = {"input": {"disputeId": str(dispute.id), "idempotencyKey": new_key(), "extraText": "Signed for."}}
    submitted = (await admin.data(SUBMIT, submit))["submitDisputeEvidence"]
    assert submitted["userErrors"] == []
    assert submitted["dispute"]["status"] == "UNDER_REVIEW"
    at_braintree = emulator.ledger.disputes[opened["id"]]
    assert at_braintree["status"] == "disputed"
    assert any("Signed for." in e["comment"] for e in at_braintree["evidence"])

    emulator.ledger.decide(at_braintree, "won")
    assert (await post_notification(server, emulator, Kind.DisputeWon, opened["id"])).status_code == 200

    async def won() -> bool:
        await settle_jobs(services)
        return (await Dispute.get(id=dispute.id)).status == "WON"

    await eventually(won)
