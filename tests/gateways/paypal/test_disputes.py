"""PayPal disputes: CUSTOMER.DISPUTE.* events signed by the emulator map to `DisputeObserved`; the re-read
(`retrieve_dispute`) resolves the disputed capture to our payment (the order); evidence reaches the emulator."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
import pytest

from domain.money import Money
from domain.statuses import CaptureMethod, DisputeStatus
from gateways.errors import InvalidGatewayRequest
from gateways.paypal import PayPalGateway
from gateways.paypal.dispute_transformers import dispute_status
from gateways.types import ChargeRequest, DisputeEvidence, DisputeObserved, WebhookDelivery
from tests.gateways.paypal.conftest import approve
from tests.paypal_emulator import PayPalEmulator


async def _paid_order(gateway: PayPalGateway, emulator: PayPalEmulator) -> tuple[str, str]:
    """A captured order of 25.00 USD for our payment `pay_disputed`: (order id, capture id)."""
    created = await gateway.charge(
        ChargeRequest(
            Money(2500, "USD"),
            "paypal",
            CaptureMethod.AUTOMATIC,
            str(uuid.uuid4()),
            metadata={"payql_payment_id": "pay_disputed"},
        )
    )
    await approve(emulator, created.reference)
    await gateway.complete(created.reference, capture=True)
    (capture_id,) = emulator.ledger.orders[created.reference].capture_ids
    return created.reference, capture_id


async def _emulator_post(emulator: PayPalEmulator, path: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{emulator.base_url}{path}", json=body)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def _observed(gateway: PayPalGateway, emulator: PayPalEmulator, event_type: str) -> DisputeObserved:
    event = next(e for e in reversed(emulator.events) if e["event_type"] == event_type)
    signed = emulator.sign(event)
    verified = await gateway.verify_webhook(WebhookDelivery(signed.headers, signed.body, int(time.time())))
    (effect,) = gateway.interpret_event(verified)
    assert isinstance(effect, DisputeObserved) and effect.stale_possible
    return effect


async def test_a_new_dispute_needs_our_response(gateway: PayPalGateway, emulator: PayPalEmulator) -> None:
    order_id, capture_id = await _paid_order(gateway, emulator)
    opened = await _emulator_post(emulator, "/emulator/disputes", {"capture_id": capture_id, "reason": "UNAUTHORISED"})

    observed = (await _observed(gateway, emulator, "CUSTOMER.DISPUTE.CREATED")).result
    assert observed.reference == opened["dispute_id"]
    assert observed.status is DisputeStatus.NEEDS_RESPONSE and observed.reason == "UNAUTHORISED"
    assert observed.amount == Money(2500, "USD")
    # The event names the capture (all an event can); our payment id travels as the transaction's `custom`.
    assert observed.payment_reference == f"paypal_capture:{capture_id}"
    assert observed.payql_payment_id == "pay_disputed"
    assert observed.evidence_due_by is not None and observed.evidence_due_by > time.time()

    current = await gateway.retrieve_dispute(observed.reference)
    assert current.payment_reference == order_id
    assert (current.status, current.evidence_due_by) == (DisputeStatus.NEEDS_RESPONSE, observed.evidence_due_by)
    # Refund and dispute events may name a capture: `retrieve` reads its order.
    assert (await gateway.retrieve(observed.payment_reference)).reference == order_id


async def test_evidence_reaches_paypal_and_the_dispute_goes_under_review(
    gateway: PayPalGateway, emulator: PayPalEmulator
) -> None:
    _, capture_id = await _paid_order(gateway, emulator)
    dispute_id = (await _emulator_post(emulator, "/emulator/disputes", {"capture_id": capture_id}))["dispute_id"]
    evidence = DisputeEvidence(
        product_description="A year of News Basic",
        customer_email_address="buyer@example.com",
        shipping_carrier="UPS",
        shipping_tracking_number="1Z999AA10123456784",
        uncategorized_text="The buyer logged in 14 times after the purchase.",
    )
    submitted = await gateway.submit_dispute_evidence(dispute_id, evidence)
    assert submitted.status is DisputeStatus.UNDER_REVIEW and submitted.gateway_status == "UNDER_REVIEW"

    assert emulator.disputes.disputes[dispute_id].evidence_content_types == ["multipart/form-data"]
    stored = emulator.disputes.disputes[dispute_id].evidences
    by_type = {e["evidence_type"]: e for e in stored}
    assert by_type["PROOF_OF_FULFILLMENT"]["evidence_info"]["tracking_info"] == [
        {"carrier_name": "OTHER", "tracking_number": "1Z999AA10123456784", "carrier_name_other": "UPS"}
    ]
    assert by_type["ITEM_DESCRIPTION"]["notes"] == "A year of News Basic"
    assert "logged in 14 times" in by_type["OTHER"]["notes"] and "buyer@example.com" in by_type["OTHER"]["notes"]
    assert (await _observed(gateway, emulator, "CUSTOMER.DISPUTE.UPDATED")).result.status is DisputeStatus.UNDER_REVIEW

    with pytest.raises(InvalidGatewayRequest):
        await gateway.submit_dispute_evidence(dispute_id, evidence)  # PayPal takes evidence only while it waits


@pytest.mark.parametrize(
    ("outcome", "status"),
    [("RESOLVED_SELLER_FAVOUR", DisputeStatus.WON), ("RESOLVED_BUYER_FAVOUR", DisputeStatus.LOST)],
)
async def test_the_resolution_says_who_won(
    gateway: PayPalGateway, emulator: PayPalEmulator, outcome: str, status: DisputeStatus
) -> None:
    _, capture_id = await _paid_order(gateway, emulator)
    dispute_id = (await _emulator_post(emulator, "/emulator/disputes", {"capture_id": capture_id}))["dispute_id"]
    await _emulator_post(emulator, f"/emulator/disputes/{dispute_id}/resolve", {"outcome": outcome})
    resolved = (await _observed(gateway, emulator, "CUSTOMER.DISPUTE.RESOLVED")).result
    assert resolved.status is status and resolved.gateway_status == f"RESOLVED_{outcome}"
    assert (await gateway.retrieve_dispute(dispute_id)).status is status


def test_unknown_statuses_never_win() -> None:
    assert dispute_status({"status": "RESOLVED", "dispute_outcome": {"outcome_code": "SOMETHING_NEW"}}) is (
        DisputeStatus.UNDER_REVIEW
    )
    assert dispute_status({"status": "OTHER"}) is DisputeStatus.NEEDS_RESPONSE
    assert dispute_status({"status": "WAITING_FOR_BUYER_RESPONSE"}) is DisputeStatus.UNDER_REVIEW
