"""Disputes end to end: opened by sandbox webhooks, evidence gathered at that moment, notes and
fulfillments added, evidence submitted through the gateway, won and lost with a balanced ledger,
duplicated and reordered webhooks, the due-date email, staff-only access, unknown payments ignored."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

from db.ledger import ledger_mismatches, ledger_net_captured
from db.models import AuditRecord, Dispute, Order, OutboxMessage, Payment, PaymentEvent, WebhookEvent
from gateways.sandbox.processor import SandboxProcessor
from gateways.sandbox.processor.webhook_switches import WebhookSwitches
from jobs.dispute_deadlines import flag_disputes_due_soon
from payql.wiring import Services
from tests.smtp_server import SmtpServer
from tests.testkit import CHECKOUT, Shopper, checkout_input, email_of, make_price, new_key, sandbox_deliverer, settle

DISPUTE_FIELDS = """
  id status reason amount { amount currency } evidenceDueBy evidence evidenceSubmittedAt dueSoon closedAt
  notes { author body } fulfillments { carrier trackingNumber }
  order { id status } payment { id status }
"""
DISPUTE = f"query($id: ID!) {{ dispute(id: $id) {{ {DISPUTE_FIELDS} }} }}"
DISPUTES = """query($status: DisputeStatus, $dueBefore: DateTime) {
  disputes(status: $status, dueBefore: $dueBefore) { id evidenceDueBy } }"""
RECORD_FULFILLMENT = """mutation($input: RecordFulfillmentInput!) { recordFulfillment(input: $input) {
  order { id } fulfillments { carrier trackingNumber recordedBy } userErrors { code field message } } }"""
ADD_NOTE = """mutation($input: AddDisputeNoteInput!) { addDisputeNote(input: $input) {
  dispute { id notes { author body } } userErrors { code field message } } }"""
SUBMIT = f"""mutation($input: SubmitDisputeEvidenceInput!) {{ submitDisputeEvidence(input: $input) {{
  dispute {{ {DISPUTE_FIELDS} }} userErrors {{ code field message }} }} }}"""
REFUND = """mutation($input: RefundPaymentInput!) { refundPayment(input: $input) {
  refund { status } userErrors { code } } }"""


@pytest.fixture
async def switches(services: Services) -> AsyncIterator[WebhookSwitches]:
    deliverer = sandbox_deliverer(services)
    assert deliverer is not None
    await settle(services)
    yield deliverer.switches
    deliverer.switches.reset()
    await settle(services)


async def paid_payment(
    shopper: Shopper, services: Services, amount: int = 8_000, method: str = "pm_card_visa"
) -> Payment:
    price = await make_price(amount, "USD", name="Espresso grinder")
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price, method, quantity=2)}))["checkout"]
    await settle(services)
    return await Payment.get(id=result["payment"]["id"])


async def open_dispute(sandbox: SandboxProcessor, services: Services, payment: Payment, **options: Any) -> Dispute:
    sandbox_dispute = await sandbox.create_dispute(payment.gateway_reference or "", "fraudulent", **options)
    await settle(services)
    return await Dispute.get(gateway="sandbox", gateway_reference=sandbox_dispute.id)


async def record_fulfillment(admin: Shopper, order_id: str, tracking: str) -> dict[str, Any]:
    variables = {
        "input": {
            "orderId": order_id,
            "carrier": "DHL",
            "trackingNumber": tracking,
            "shippedAt": "2026-11-20T10:00:00Z",
            "idempotencyKey": new_key(),
        }
    }
    result: dict[str, Any] = (await admin.data(RECORD_FULFILLMENT, variables))["recordFulfillment"]
    return result


async def assert_balanced(payment: Payment, net: int) -> None:
    assert not [m for m in await ledger_mismatches() if m.payment_id == payment.id]
    assert await ledger_net_captured(payment.id) == net


async def test_a_dispute_gathers_the_evidence_and_disputes_the_order(
    shopper: Shopper, admin: Shopper, sandbox: SandboxProcessor, services: Services
) -> None:
    price = await make_price(4_000, "USD", name="Pour-over kettle")
    started = (
        await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_authenticationRequired", quantity=2)})
    )["checkout"]
    assert started["payment"]["status"] == "REQUIRES_ACTION"
    payment = await Payment.get(id=started["payment"]["id"])
    await sandbox.complete_authentication(payment.gateway_reference or "", succeed=True)
    await settle(services)
    refunded = await admin.data(
        REFUND,
        {"input": {"paymentId": str(payment.id), "amount": 1_000, "reason": "late", "idempotencyKey": new_key()}},
    )
    assert refunded["refundPayment"]["refund"]["status"] == "SUCCEEDED"
    shipped = await record_fulfillment(admin, str(payment.order_id), "JD0001")
    assert shipped["userErrors"] == [] and shipped["fulfillments"][0]["recordedBy"] == f"admin:{admin.subject}"
    await settle(services)

    dispute = await open_dispute(sandbox, services, payment)

    order = await Order.get(id=payment.order_id)
    assert order.status == "DISPUTED"
    assert (dispute.status, dispute.reason, dispute.amount) == ("NEEDS_RESPONSE", "fraudulent", 7_000)
    evidence = dispute.evidence
    assert [(i["product_name"], i["quantity"]) for i in evidence["order"]["line_items"]] == [("Pour-over kettle", 2)]
    assert evidence["order"]["total"]["amount"] == 8_000
    assert evidence["customer"]["email"] == email_of(shopper.subject)
    assert evidence["order"]["checkout_ip"] == order.checkout_ip and order.checkout_ip
    assert evidence["order"]["checkout_user_agent"] == order.checkout_user_agent and order.checkout_user_agent
    assert evidence["payment"]["gateway_reference"] == payment.gateway_reference
    assert evidence["payment"]["three_d_secure"] == {"required": True, "outcome": "authenticated"}
    assert [(r["amount"]["amount"], r["status"], r["reason"]) for r in evidence["refunds"]] == [
        (1_000, "SUCCEEDED", "late")
    ]
    actions = {(e["entity_id"], e["action"]) for e in evidence["audit_trail"]}
    assert (str(payment.id), "payment.paid") in actions and (str(order.id), "order.fulfillment_recorded") in actions
    assert [(f["carrier"], f["tracking_number"]) for f in evidence["fulfillments"]] == [("DHL", "JD0001")]
    # Money: withdrawn once, and the books still balance.
    assert await PaymentEvent.filter(payment_id=payment.id, type="DISPUTE_WITHDRAWN").count() == 1
    await assert_balanced(payment, 8_000 - 1_000 - 7_000)
    assert await AuditRecord.filter(entity_id=str(dispute.id), action="dispute.created").count() == 1

    seen = (await admin.data(DISPUTE, {"id": str(dispute.id)}))["dispute"]
    assert seen["status"] == "NEEDS_RESPONSE" and seen["order"]["status"] == "DISPUTED"
    assert seen["evidence"]["payment"]["id"] == str(payment.id) and seen["dueSoon"] is False
    assert seen["fulfillments"] == [{"carrier": "DHL", "trackingNumber": "JD0001"}]


async def test_submitted_evidence_reaches_the_gateway_and_a_won_dispute_gives_the_money_back(
    shopper: Shopper, admin: Shopper, sandbox: SandboxProcessor, services: Services
) -> None:
    payment = await paid_payment(shopper, services)
    dispute = await open_dispute(sandbox, services, payment)
    await record_fulfillment(admin, str(payment.order_id), "1Z999AA10123456784")
    noted = await admin.data(ADD_NOTE, {"input": {"disputeId": str(dispute.id), "body": "Signed for by J. Doe."}})
    assert noted["addDisputeNote"]["dispute"]["notes"] == [
        {"author": f"admin:{admin.subject}", "body": "Signed for by J. Doe."}
    ]
    key = new_key()
    submit = {"input": {"disputeId": str(dispute.id), "idempotencyKey": key, "extraText": "Delivered to the door."}}
    submitted = (await admin.data(SUBMIT, submit))["submitDisputeEvidence"]
    assert submitted["userErrors"] == []
    assert submitted["dispute"]["status"] == "UNDER_REVIEW" and submitted["dispute"]["evidenceSubmittedAt"]

    at_gateway = await sandbox.retrieve_dispute(dispute.gateway_reference)
    assert at_gateway.status == "under_review"
    assert at_gateway.evidence["shipping_tracking_number"] == "1Z999AA10123456784"
    assert at_gateway.evidence["customer_email_address"] == email_of(shopper.subject)
    assert "Delivered to the door." in at_gateway.evidence["uncategorized_text"]
    assert "Signed for by J. Doe." in at_gateway.evidence["uncategorized_text"]
    replayed = (await admin.data(SUBMIT, submit))["submitDisputeEvidence"]
    assert replayed["userErrors"] == [] and replayed["dispute"]["id"] == str(dispute.id)
    again = await admin.data(SUBMIT, {"input": {**submit["input"], "idempotencyKey": new_key()}})
    assert [e["code"] for e in again["submitDisputeEvidence"]["userErrors"]] == ["INVALID_STATE"]
    assert (await sandbox.retrieve_dispute(dispute.gateway_reference)).submission_count == 1
    record = await AuditRecord.get(entity_id=str(dispute.id), action="dispute.evidence_submitted")
    assert record.actor == f"admin:{admin.subject}" and record.request_id and record.source_ip

    await sandbox.close_dispute(dispute.gateway_reference, won=True)
    await settle(services)
    dispute = await Dispute.get(id=dispute.id)
    assert dispute.status == "WON" and dispute.closed_at is not None
    assert (await Order.get(id=payment.order_id)).status == "PAID"
    assert await PaymentEvent.filter(payment_id=payment.id, type="DISPUTE_REINSTATED").count() == 1
    await assert_balanced(payment, 16_000)
    closed = await admin.data(SUBMIT, {"input": {**submit["input"], "idempotencyKey": new_key()}})
    assert [e["code"] for e in closed["submitDisputeEvidence"]["userErrors"]] == ["INVALID_STATE"]


async def test_a_submission_whose_answer_was_lost_is_resumed_with_the_same_key(
    shopper: Shopper, admin: Shopper, sandbox: SandboxProcessor, services: Services
) -> None:
    payment = await paid_payment(shopper, services)
    dispute = await open_dispute(sandbox, services, payment)
    submit = {"input": {"disputeId": str(dispute.id), "idempotencyKey": new_key(), "extraText": "Tracked parcel."}}
    sandbox.arm_fault("timeout", 1)  # the processor takes the evidence, and the answer is lost
    try:
        lost = (await admin.data(SUBMIT, submit))["submitDisputeEvidence"]
    finally:
        sandbox.clear_faults()
    assert [e["code"] for e in lost["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    await settle(services)  # the gateway's own webhook says under review meanwhile

    resumed = (await admin.data(SUBMIT, submit))["submitDisputeEvidence"]
    assert resumed["userErrors"] == []
    assert resumed["dispute"]["status"] == "UNDER_REVIEW" and resumed["dispute"]["evidenceSubmittedAt"]
    assert "Tracked parcel." in resumed["dispute"]["evidence"]["submitted"]["fields"]["uncategorized_text"]
    assert (await sandbox.retrieve_dispute(dispute.gateway_reference)).submission_count == 1
    assert await AuditRecord.filter(entity_id=str(dispute.id), action="dispute.evidence_submitted").count() == 1


async def test_a_lost_dispute_keeps_the_money_withdrawn(
    shopper: Shopper, sandbox: SandboxProcessor, services: Services
) -> None:
    payment = await paid_payment(shopper, services)
    dispute = await open_dispute(sandbox, services, payment, amount=5_000)
    await sandbox.close_dispute(dispute.gateway_reference, won=False)
    await settle(services)
    dispute = await Dispute.get(id=dispute.id)
    assert dispute.status == "LOST"
    assert (await Order.get(id=payment.order_id)).status == "DISPUTED"
    assert await PaymentEvent.filter(payment_id=payment.id, type="DISPUTE_REINSTATED").count() == 0
    await assert_balanced(payment, 16_000 - 5_000)


@pytest.mark.parametrize("won", [True, False])
async def test_duplicated_and_reordered_dispute_webhooks_end_in_the_same_state(
    won: bool, shopper: Shopper, sandbox: SandboxProcessor, services: Services, switches: WebhookSwitches
) -> None:
    payment = await paid_payment(shopper, services)
    switches.hold()
    opened = await sandbox.create_dispute(payment.gateway_reference or "", "product_not_received")
    await sandbox.close_dispute(opened.id, won=won)
    switches.duplicate(3)
    switches.release(reverse=True)  # closed (and reinstated) first, created last, each three times
    await settle(services)
    switches.duplicate(1)

    dispute = await Dispute.get(gateway_reference=opened.id)
    assert dispute.status == ("WON" if won else "LOST")
    assert await PaymentEvent.filter(payment_id=payment.id, type="DISPUTE_WITHDRAWN").count() == 1
    assert await PaymentEvent.filter(payment_id=payment.id, type="DISPUTE_REINSTATED").count() == (1 if won else 0)
    assert (await Order.get(id=payment.order_id)).status == ("PAID" if won else "DISPUTED")
    await assert_balanced(payment, 16_000 if won else 0)
    assert await AuditRecord.filter(entity_id=str(dispute.id), action="dispute.created").count() == 1
    # A late copy of `created` after the close changes nothing.
    [created] = [
        e for e in await sandbox.list_events() if e["type"] == "charge.dispute.created" and _about(e, opened.id)
    ]
    assert created["id"] in {
        e.event_id for e in await WebhookEvent.filter(gateway="sandbox", event_type="charge.dispute.created")
    }
    assert (await Dispute.get(id=dispute.id)).status == dispute.status


async def test_the_due_date_check_emails_the_merchant_once(
    shopper: Shopper, admin: Shopper, sandbox: SandboxProcessor, services: Services, mail_server: SmtpServer
) -> None:
    payment = await paid_payment(shopper, services)
    dispute = await open_dispute(sandbox, services, payment)
    assert dispute.evidence_due_by is not None
    merchant = f"merchant-{uuid.uuid4().hex[:8]}@shop.example"
    warning = timedelta(days=3)

    await flag_disputes_due_soon(
        warning=warning, merchant_email=merchant, now=dispute.evidence_due_by - timedelta(days=5)
    )
    assert (await Dispute.get(id=dispute.id)).due_soon_flagged_at is None
    near = dispute.evidence_due_by - timedelta(days=2)
    assert await flag_disputes_due_soon(warning=warning, merchant_email=merchant, now=near) >= 1
    assert await flag_disputes_due_soon(warning=warning, merchant_email=merchant, now=near) == 0
    await settle(services)

    about_it = [m for m in mail_server.messages_to(merchant) if str(dispute.id) in m.get_body(("plain",)).get_content()]  # type: ignore[union-attr]
    assert len(about_it) == 1
    assert await OutboxMessage.filter(dedupe_key=f"dispute_due_soon:{dispute.id}").count() == 1
    seen = (await admin.data(DISPUTE, {"id": str(dispute.id)}))["dispute"]
    assert seen["dueSoon"] is True
    listed = (await admin.data(DISPUTES, {"status": "NEEDS_RESPONSE", "dueBefore": seen["evidenceDueBy"]}))["disputes"]
    assert str(dispute.id) not in [d["id"] for d in listed]
    dues = [d["evidenceDueBy"] for d in (await admin.data(DISPUTES, {"status": "NEEDS_RESPONSE"}))["disputes"]]
    dated = [due for due in dues if due is not None]
    assert dues[: len(dated)] == sorted(dated)  # earliest due first; disputes without a due date after


async def test_disputes_are_for_staff_only(shopper: Shopper, sandbox: SandboxProcessor, services: Services) -> None:
    payment = await paid_payment(shopper, services)
    dispute = await open_dispute(sandbox, services, payment)
    for query, variables in ((DISPUTE, {"id": str(dispute.id)}), (DISPUTES, {})):
        body = await shopper.gql(query, variables)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    note = await shopper.data(ADD_NOTE, {"input": {"disputeId": str(dispute.id), "body": "let me in"}})
    assert [e["code"] for e in note["addDisputeNote"]["userErrors"]] == ["FORBIDDEN"]
    submit = {"input": {"disputeId": str(dispute.id), "idempotencyKey": new_key()}}
    submitted = await shopper.data(SUBMIT, submit)
    assert [e["code"] for e in submitted["submitDisputeEvidence"]["userErrors"]] == ["FORBIDDEN"]
    shipped = await shopper.data(
        RECORD_FULFILLMENT,
        {
            "input": {
                "orderId": str(payment.order_id),
                "carrier": "DHL",
                "trackingNumber": "X",
                "idempotencyKey": new_key(),
            }
        },
    )
    assert [e["code"] for e in shipped["recordFulfillment"]["userErrors"]] == ["FORBIDDEN"]
    assert (await sandbox.retrieve_dispute(dispute.gateway_reference)).status == "needs_response"


async def test_a_dispute_on_a_payment_payql_did_not_create_is_ignored(
    sandbox: SandboxProcessor, services: Services
) -> None:
    intent = await sandbox.create_payment_intent(
        amount=2_500, currency="USD", payment_method="pm_card_visa", idempotency_key=new_key()
    )
    opened = await sandbox.create_dispute(intent.id, "general")
    await settle(services)
    events = [e["id"] for e in await sandbox.list_events() if _about(e, opened.id)]
    stored = await WebhookEvent.filter(gateway="sandbox", event_id__in=events)
    assert len(stored) == 2 and {row.status for row in stored} == {"IGNORED"}
    assert not await Dispute.filter(gateway_reference=opened.id).exists()


def _about(event: dict[str, Any], object_id: str) -> bool:
    data: dict[str, Any] = event["data"]
    return bool(data["object"].get("id") == object_id)
