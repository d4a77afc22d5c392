"""After a checkout, a fulfillment, a dispute note, a dispute and its evidence submission, no table of
the database holds the shopper's email, IP address or user agent, the note, the evidence text or the
tracking number in plain text, while the models still read them all."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from tortoise import connections

from db.models import Customer, Dispute, DisputeNote, Fulfillment, Order, Payment
from gateways.sandbox.processor import SandboxProcessor
from payql.wiring import Services
from tests.client_addresses import PROXY_ADDRESS
from tests.testkit import CHECKOUT, Shopper, checkout_input, email_of, make_price, new_key, settle

IP = "198.51.100.77"
USER_AGENT = "PayQL-at-rest-probe/1.0 (X11; Linux)"
NOTE = "Cardholder phoned from +1 555 0199 to confirm receipt."
EVIDENCE_TEXT = "Delivered to the side door, photo on file."
TRACKING = "1ZATREST00000001"
ADD_NOTE = """mutation($input: AddDisputeNoteInput!) { addDisputeNote(input: $input) { userErrors { code } } }"""
RECORD_FULFILLMENT = """mutation($input: RecordFulfillmentInput!) { recordFulfillment(input: $input) {
  userErrors { code } } }"""
SUBMIT = """mutation($input: SubmitDisputeEvidenceInput!) { submitDisputeEvidence(input: $input) {
  dispute { status } userErrors { code } } }"""


@pytest.fixture
async def probe(server: str) -> AsyncIterator[Shopper]:
    """A shopper whose browser and address are easy to find in a dump (sent through the trusted proxy)."""
    headers = {"user-agent": USER_AGENT, "x-forwarded-for": IP}
    transport = httpx.AsyncHTTPTransport(local_address=PROXY_ADDRESS)
    async with httpx.AsyncClient(base_url=server, timeout=60, headers=headers, transport=transport) as client:
        yield Shopper(client, f"at-rest-{uuid.uuid4()}")


async def database_dump() -> dict[str, str]:
    """Every table's rows as the database stores them, one text per table."""
    client = connections.get("default")
    if client.capabilities.dialect == "postgres":
        tables = [
            r["tablename"]
            for r in await client.execute_query_dict("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        ]
        return {
            table: "\n".join(
                r["row"] for r in await client.execute_query_dict(f'SELECT t::text AS row FROM "{table}" t')
            )
            for table in tables
        }
    tables = [
        r["name"]
        for r in await client.execute_query_dict(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    return {
        table: "\n".join(repr(list(r.values())) for r in await client.execute_query_dict(f'SELECT * FROM "{table}"'))
        for table in tables
    }


async def test_personal_data_is_nowhere_in_plain_text(
    probe: Shopper, admin: Shopper, sandbox: SandboxProcessor, services: Services
) -> None:
    price = await make_price(5_000, "USD", name="Burr grinder")
    started = (await probe.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    await settle(services)
    payment = await Payment.get(id=started["payment"]["id"])
    fulfillment = {"orderId": str(payment.order_id), "carrier": "UPS", "trackingNumber": TRACKING}
    recorded = await admin.data(RECORD_FULFILLMENT, {"input": fulfillment | {"idempotencyKey": new_key()}})
    assert recorded["recordFulfillment"]["userErrors"] == []
    opened = await sandbox.create_dispute(payment.gateway_reference or "", "fraudulent")
    await settle(services)
    dispute = await Dispute.get(gateway="sandbox", gateway_reference=opened.id)
    noted = await admin.data(ADD_NOTE, {"input": {"disputeId": str(dispute.id), "body": NOTE}})
    assert noted["addDisputeNote"]["userErrors"] == []
    submit = {"disputeId": str(dispute.id), "idempotencyKey": new_key(), "extraText": EVIDENCE_TEXT}
    submitted = (await admin.data(SUBMIT, {"input": submit}))["submitDisputeEvidence"]
    assert submitted["userErrors"] == [] and submitted["dispute"]["status"] == "UNDER_REVIEW"
    await settle(services)

    # The models read every value plainly: the personal data did reach the database.
    email = email_of(probe.subject)
    order = await Order.get(id=payment.order_id)
    assert (order.checkout_ip, order.checkout_user_agent) == (IP, USER_AGENT)
    assert (await Customer.get(id=order.customer_id)).email == email
    assert [n.body for n in await DisputeNote.filter(dispute_id=dispute.id)] == [NOTE]
    assert [f.tracking_number for f in await Fulfillment.filter(order_id=order.id)] == [TRACKING]
    evidence = (await Dispute.get(id=dispute.id)).evidence
    assert evidence["customer"]["email"] == email and evidence["order"]["checkout_ip"] == IP
    assert EVIDENCE_TEXT in evidence["submitted"]["fields"]["uncategorized_text"]

    dump = await database_dump()
    found = {
        (needle, table)
        for table, text in dump.items()
        for needle in (email, IP, USER_AGENT, NOTE, EVIDENCE_TEXT, TRACKING)
        if needle in text
    }
    assert found == set()
