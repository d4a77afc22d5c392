"""A child process for the rotation tests: seed one row of every personal data column, read them
back, or re-seal them, on a database of its own with the keys in PAYQL_DATA_KEYS (so the session's
server, its database and its installed keys are untouched).

    python -m tests.db.encrypted_rows seed|read|rotate <database url>

It prints one JSON line. The index key is fixed: it does not rotate with the data keys.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from typing import Any

from db.config import close_database, open_database
from db.encryption import DataKeys
from db.merchant_models import MerchantEndpoint
from db.models import (
    AuditRecord,
    Customer,
    Dispute,
    DisputeNote,
    Fulfillment,
    IdempotencyRecord,
    Order,
    Payment,
    WebhookEvent,
)
from db.reseal import reseal_all
from tests.testkit import TEST_DATA_INDEX_KEY

EMAIL = "Ada.Lovelace@example.com"
IP = "198.51.100.23"
USER_AGENT = "Mozilla/5.0 (PayQL rotation test)"
NOTE = "Cardholder called from +1 555 0100"
TRACKING = "1Z-ROTATION-0001"
WEBHOOK_BODY = '{"data":{"object":{"receipt_email":"ada@example.com"}}}'
EVIDENCE = {"customer": {"email": EMAIL}, "order": {"checkout_ip": IP}}
RECOVERY = {"evidence": {"customer_purchase_ip": IP}}
SIGNING_SECRETS = ["whsec_rotation_current", "whsec_rotation_previous"]


async def seed() -> dict[str, Any]:
    customer = await Customer.create(external_id="ada", email=EMAIL)
    order = await Order.create(
        customer=customer, currency="USD", total_amount=1200, checkout_ip=IP, checkout_user_agent=USER_AGENT
    )
    payment_id = uuid.uuid4()
    payment = await Payment.create(
        id=payment_id,
        order=order,
        gateway="sandbox",
        gateway_reference="pi_rotation",
        idempotency_key=f"payment-{payment_id}",
        payment_method="pm_card_visa",
        currency="USD",
        amount=1200,
    )
    dispute = await Dispute.create(
        payment=payment, gateway="sandbox", gateway_reference="dp_rotation", currency="USD", evidence=EVIDENCE
    )
    await DisputeNote.create(dispute=dispute, author="admin:staff", body=NOTE)
    await Fulfillment.create(order=order, carrier="UPS", tracking_number=TRACKING, recorded_by="admin:staff")
    await WebhookEvent.create(
        gateway="sandbox", event_id="evt_rotation", event_type="charge.updated", body=WEBHOOK_BODY
    )
    await IdempotencyRecord.create(
        scope="rotation",
        key="k-1",
        request_hash="ab" * 32,
        recovery_point=RECOVERY,
        locked_until=order.created_at,
        expires_at=order.created_at,
    )
    await AuditRecord.create(
        actor="customer:ada", action="order.created", entity_type="order", entity_id=str(order.id), source_ip=IP
    )
    await MerchantEndpoint.create(
        url="https://hooks.example/in", secret=SIGNING_SECRETS[0], previous_secret=SIGNING_SECRETS[1]
    )
    return {"customer": str(customer.id), "order": str(order.id)}


async def read() -> dict[str, Any]:
    """Every personal value through the models, and the customers the blind index finds per email."""
    return {
        "emails": sorted(c.email or "" for c in await Customer.all()),
        "orders": [[o.checkout_ip, o.checkout_user_agent] for o in await Order.all()],
        "evidence": [d.evidence for d in await Dispute.all()],
        "notes": [n.body for n in await DisputeNote.all()],
        "tracking": [f.tracking_number for f in await Fulfillment.all()],
        "webhooks": [w.body for w in await WebhookEvent.all()],
        "recovery": [r.recovery_point for r in await IdempotencyRecord.all()],
        "audit_ips": sorted(a.source_ip or "" for a in await AuditRecord.all()),
        "signing_secrets": [[e.secret, e.previous_secret] for e in await MerchantEndpoint.all()],
        "by_index": {
            email: await Customer.with_email(email).values_list("external_id", flat=True)
            for email in (" ada.lovelace@EXAMPLE.com", "legacy@example.com")
        },
    }


async def rotate(keys: DataKeys) -> dict[str, list[int]]:
    reports = await reseal_all(keys, batch_size=2)
    return {r.column.associated_data: [r.resealed, r.reindexed, len(r.unreadable)] for r in reports}


async def main(action: str, url: str) -> Any:
    keys = DataKeys.parse(os.environ["PAYQL_DATA_KEYS"], TEST_DATA_INDEX_KEY)
    await open_database(url, keys)
    try:
        if action == "seed":
            return await seed()
        if action == "read":
            return await read()
        if action == "rotate":
            return await rotate(keys)
    finally:
        await close_database()
    raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
