"""Adyen chargebacks through the running PayQL server: the CHARGEBACK notification opens a dispute (the order is
DISPUTED), staff defend it with `submitDisputeEvidence` (Adyen's Disputes API receives PDF documents and the
defense), CHARGEBACK_REVERSED wins it back. A dispute whose defense reasons PayQL's evidence cannot serve is
NOT_SUPPORTED and stays open. And subscriptions, which Adyen cannot bill, are NOT_SUPPORTED."""

from __future__ import annotations

import io

from pypdf import PdfReader

from db.models import Dispute, Order, Payment
from domain.statuses import DisputeStatus
from gateways.adyen import AdyenGateway
from payql.wiring import Services
from tests.adyen_emulator import AdyenEmulator
from tests.features.subscriptions.kit import CREATE, recurring_price
from tests.gateways.adyen.conftest import drop_in
from tests.gateways.adyen.test_checkout_flow import checkout, deliver
from tests.testkit import Shopper, new_key

SUBMIT = """mutation($input: SubmitDisputeEvidenceInput!) { submitDisputeEvidence(input: $input) {
  dispute { id status evidenceSubmittedAt } userErrors { code field message } } }"""


async def charged_back(
    shopper: Shopper, emulator: AdyenEmulator, server: str, services: Services, **options: object
) -> Dispute:
    """A paid Adyen checkout, then a CHARGEBACK notification delivered to PayQL: the open dispute."""
    started = await checkout(shopper, drop_in())
    payment = await Payment.get(id=started["payment"]["id"])
    await deliver(emulator, server, services)
    reference = emulator.chargeback(str(payment.gateway_reference), "CHARGEBACK", **options)  # type: ignore[arg-type]
    await deliver(emulator, server, services)
    return await Dispute.get(gateway="adyen", gateway_reference=reference)


async def reverse_and_win(
    emulator: AdyenEmulator, server: str, services: Services, payment: Payment, dispute: Dispute
) -> None:
    """Adyen's CHARGEBACK_REVERSED notification delivered to PayQL: the dispute is won, the order paid again."""
    emulator.chargeback(str(payment.gateway_reference), "CHARGEBACK_REVERSED", dispute_status="Won")
    await deliver(emulator, server, services)
    assert (await Dispute.get(id=dispute.id)).status is DisputeStatus.WON
    assert (await Order.get(id=payment.order_id)).status == "PAID"


def pdf_text(pdf: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


async def test_a_chargeback_opens_a_dispute_and_its_reversal_wins_it(
    adyen_in_payql: AdyenGateway, emulator: AdyenEmulator, shopper: Shopper, server: str, services: Services
) -> None:
    started = await checkout(shopper, drop_in())
    payment = await Payment.get(id=started["payment"]["id"])
    await deliver(emulator, server, services)

    dispute_reference = emulator.chargeback(str(payment.gateway_reference), "CHARGEBACK")
    await deliver(emulator, server, services)
    dispute = await Dispute.get(gateway="adyen", gateway_reference=dispute_reference)
    assert (dispute.status, dispute.amount, dispute.payment_id) == (DisputeStatus.NEEDS_RESPONSE, 4_250, payment.id)
    assert dispute.evidence_due_by is not None
    assert (await Order.get(id=payment.order_id)).status == "DISPUTED"

    await reverse_and_win(emulator, server, services, payment, dispute)


async def test_staff_defend_a_chargeback_through_adyens_disputes_api_and_the_reversal_wins_it(
    adyen_in_payql: AdyenGateway,
    emulator: AdyenEmulator,
    shopper: Shopper,
    admin: Shopper,
    server: str,
    services: Services,
) -> None:
    dispute = await charged_back(shopper, emulator, server, services)
    assert dispute.status is DisputeStatus.NEEDS_RESPONSE

    submit = {
        "input": {"disputeId": str(dispute.id), "idempotencyKey": new_key(), "extraText": "Signed for at the door."}
    }
    submitted = (await admin.data(SUBMIT, submit))["submitDisputeEvidence"]

    assert submitted["userErrors"] == []
    assert submitted["dispute"]["status"] == "UNDER_REVIEW" and submitted["dispute"]["evidenceSubmittedAt"]
    at_adyen = emulator.defended(dispute.gateway_reference)
    assert at_adyen.defended_with == "SupplyDefenseMaterial"
    content_type, material = at_adyen.documents["DefenseMaterial"]
    assert content_type == "application/pdf"
    text = pdf_text(material)
    assert "Signed for at the door." in text and dispute.gateway_reference in text
    assert f"Order {(await Payment.get(id=dispute.payment_id)).order_id}" in pdf_text(
        at_adyen.documents["TIDorInvoice"][1]
    )

    # The outcome is Adyen's notification, not our request.
    payment = await Payment.get(id=dispute.payment_id)
    await reverse_and_win(emulator, server, services, payment, dispute)


async def test_a_defense_whose_answer_was_lost_is_resumed_with_the_same_key(
    adyen_in_payql: AdyenGateway,
    emulator: AdyenEmulator,
    shopper: Shopper,
    admin: Shopper,
    server: str,
    services: Services,
) -> None:
    dispute = await charged_back(shopper, emulator, server, services)
    submit = {"input": {"disputeId": str(dispute.id), "idempotencyKey": new_key(), "extraText": "Tracked parcel."}}
    emulator.lose_next_answer("defendDispute")  # Adyen defends the dispute; PayQL never hears so

    lost = (await admin.data(SUBMIT, submit))["submitDisputeEvidence"]
    assert [e["code"] for e in lost["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    assert (await Dispute.get(id=dispute.id)).evidence_submitted_at is None

    # Adyen cannot be asked whether it arrived: the same evidence goes again, and Adyen replays its answers.
    resumed = (await admin.data(SUBMIT, submit))["submitDisputeEvidence"]
    assert resumed["userErrors"] == []
    assert resumed["dispute"]["status"] == "UNDER_REVIEW" and resumed["dispute"]["evidenceSubmittedAt"]
    assert emulator.defended(dispute.gateway_reference).defended_with == "SupplyDefenseMaterial"
    defenses = [key for path, key in emulator.requests if path.endswith("/defendDispute")]
    assert len(defenses) == 2 and len(set(defenses)) == 1


async def test_a_defense_the_evidence_cannot_serve_is_not_supported_and_the_dispute_stays_open(
    adyen_in_payql: AdyenGateway,
    emulator: AdyenEmulator,
    shopper: Shopper,
    admin: Shopper,
    server: str,
    services: Services,
) -> None:
    reasons = (("GoodsNotReturned", (("GoodsNotReturned", "Required"),)),)
    dispute = await charged_back(shopper, emulator, server, services, defense_reasons=reasons)

    submit = {"input": {"disputeId": str(dispute.id), "idempotencyKey": new_key(), "extraText": "Never returned."}}
    submitted = (await admin.data(SUBMIT, submit))["submitDisputeEvidence"]

    assert [e["code"] for e in submitted["userErrors"]] == ["NOT_SUPPORTED"]
    kept = await Dispute.get(id=dispute.id)
    assert kept.status is DisputeStatus.NEEDS_RESPONSE and kept.evidence_submitted_at is None
    assert emulator.defended(dispute.gateway_reference).defended_with is None


async def test_subscriptions_are_not_supported(adyen_in_payql: AdyenGateway, shopper: Shopper) -> None:
    price = await recurring_price(1_500, currency="EUR")
    variables = {
        "input": {"priceId": str(price.id), "gateway": "adyen", "paymentMethod": drop_in(), "idempotencyKey": new_key()}
    }
    created = (await shopper.data(CREATE, variables))["createSubscription"]
    assert [(e["code"], e["field"]) for e in created["userErrors"]] == [("NOT_SUPPORTED", "gateway")]
    assert "subscriptions" in created["userErrors"][0]["message"]
