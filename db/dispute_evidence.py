"""A dispute's evidence: gathered from our own records, and turned into what the gateway takes.

`gather` runs inside the transaction that creates the dispute, with its order and payment locked, so
the evidence is a snapshot of what we knew the moment the dispute arrived: the order and its lines,
the customer, the checkout's IP address and user agent, the payment and its 3-D Secure outcome,
refunds, the audit trail, fulfillments and notes. `gateway_evidence` builds the `DisputeEvidence`
that `submitDisputeEvidence` sends. Nothing here writes to the database or calls a gateway.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from db.models import (
    AuditRecord,
    Customer,
    DisputeNote,
    Fulfillment,
    LineItem,
    Order,
    Payment,
    PaymentEvent,
    PaymentEventType,
    Refund,
)
from domain.money import Money
from domain.statuses import PAYMENT_SUCCEEDED
from gateways.types import DisputeEvidence

MAX_AUDIT_ENTRIES = 200
MAX_TEXT = 19_000  # under the sandbox's and Stripe's limit for one evidence field


async def gather(order: Order, payment: Payment, connection: BaseDBAsyncClient) -> dict[str, Any]:
    customer = await Customer.filter(id=order.customer_id).using_db(connection).get()
    lines = await LineItem.filter(order_id=order.id).using_db(connection).order_by("product_name", "id")
    refunds = await Refund.filter(payment_id=payment.id).using_db(connection).order_by("created_at")
    required_action = (
        await PaymentEvent.filter(payment_id=payment.id, type=PaymentEventType.REQUIRES_ACTION)
        .using_db(connection)
        .exists()
    )
    entity_ids = [str(order.id), str(payment.id), *(str(r.id) for r in refunds)]
    audit = (
        await AuditRecord.filter(entity_id__in=entity_ids).using_db(connection).order_by("id").limit(MAX_AUDIT_ENTRIES)
    )
    notes = (
        await DisputeNote.filter(dispute__payment__order_id=order.id).using_db(connection).order_by("created_at", "id")
    )
    return {
        "gathered_at": datetime.now(UTC).isoformat(),
        "order": {
            "id": str(order.id),
            "status": str(order.status),
            "created_at": order.created_at.isoformat(),
            "total": _money(order.total_amount, order.currency),
            "checkout_ip": order.checkout_ip,
            "checkout_user_agent": order.checkout_user_agent,
            "line_items": [
                {
                    "product_name": line.product_name,
                    "quantity": line.quantity,
                    "unit_amount": _money(line.unit_amount, line.currency),
                    "total": _money(line.total_amount, line.currency),
                }
                for line in lines
            ],
        },
        "customer": {"id": str(customer.id), "external_id": customer.external_id, "email": customer.email},
        "payment": {
            "id": str(payment.id),
            "gateway": payment.gateway,
            "gateway_reference": payment.gateway_reference,
            "status": str(payment.status),
            "payment_method": payment.payment_method,
            "amount": _money(payment.amount, payment.currency),
            "captured": _money(payment.amount_captured, payment.currency),
            "refunded": _money(payment.amount_refunded, payment.currency),
            "created_at": payment.created_at.isoformat(),
            "three_d_secure": _three_d_secure(payment, required_action),
        },
        "refunds": [
            {
                "id": str(refund.id),
                "status": str(refund.status),
                "amount": _money(refund.amount, refund.currency),
                "reason": refund.reason,
                "created_at": refund.created_at.isoformat(),
            }
            for refund in refunds
        ],
        "audit_trail": [
            {
                "id": record.id,
                "at": record.created_at.isoformat(),
                "actor": record.actor,
                "action": record.action,
                "entity_type": record.entity_type,
                "entity_id": record.entity_id,
            }
            for record in audit
        ],
        "fulfillments": await fulfillments(order.id, connection),
        "notes": [note_json(note) for note in notes],
    }


async def fulfillments(order_id: Any, connection: BaseDBAsyncClient | None = None) -> list[dict[str, Any]]:
    rows = await Fulfillment.filter(order_id=order_id).using_db(connection).order_by("created_at", "id")
    return [
        {
            "id": row.id,
            "carrier": row.carrier,
            "tracking_number": row.tracking_number,
            "shipped_at": row.shipped_at.isoformat() if row.shipped_at else None,
            "recorded_by": row.recorded_by,
        }
        for row in rows
    ]


def note_json(note: DisputeNote) -> dict[str, Any]:
    return {"id": note.id, "author": note.author, "body": note.body, "at": note.created_at.isoformat()}


def gateway_evidence(
    gathered: Mapping[str, Any],
    shipments: Sequence[Mapping[str, Any]],
    notes: Sequence[Mapping[str, Any]],
    extra_text: str,
) -> DisputeEvidence:
    """The evidence to send: the gathered snapshot, plus the fulfillments and notes recorded until now."""
    order = gathered.get("order", {})
    customer = gathered.get("customer", {})
    payment = gathered.get("payment", {})
    lines = [
        f"{line['quantity']} x {line['product_name']} at {_shown(line['unit_amount'])}"
        for line in order.get("line_items", [])
    ]
    latest = shipments[-1] if shipments else None
    receipt = (
        f"Order {order.get('id')} of {order.get('created_at')}, total {_shown(order.get('total'))}; "
        f"paid through {payment.get('gateway')} {payment.get('gateway_reference')}, "
        f"captured {_shown(payment.get('captured'))}."
    )
    return DisputeEvidence(
        product_description="; ".join(lines),
        customer_name=str(customer.get("external_id") or ""),
        customer_email_address=str(customer.get("email") or ""),
        customer_purchase_ip=str(order.get("checkout_ip") or ""),
        receipt=receipt,
        shipping_carrier=str(latest["carrier"]) if latest else "",
        shipping_tracking_number=str(latest["tracking_number"]) if latest else "",
        shipping_date=str(latest["shipped_at"] or "") if latest else "",
        uncategorized_text=_summary(gathered, shipments, notes, extra_text)[:MAX_TEXT],
    )


def _summary(
    gathered: Mapping[str, Any],
    shipments: Sequence[Mapping[str, Any]],
    notes: Sequence[Mapping[str, Any]],
    extra_text: str,
) -> str:
    order = gathered.get("order", {})
    payment = gathered.get("payment", {})
    secure = payment.get("three_d_secure", {})
    parts = [extra_text.strip()] if extra_text.strip() else []
    parts.append(f"Checkout from IP {order.get('checkout_ip')} with user agent {order.get('checkout_user_agent')}.")
    parts.append(f"3-D Secure: {secure.get('outcome')}.")
    for refund in gathered.get("refunds", []):
        parts.append(f"Refund {refund['id']}: {_shown(refund['amount'])} {refund['status']} ({refund['reason']}).")
    for shipment in shipments:
        parts.append(
            f"Shipped with {shipment['carrier']}, tracking {shipment['tracking_number']}, on {shipment['shipped_at']}."
        )
    for note in notes:
        parts.append(f"Note by {note['author']}: {note['body']}")
    actions = ", ".join(f"{entry['at'][:19]} {entry['action']}" for entry in gathered.get("audit_trail", []))
    if actions:
        parts.append(f"Audit trail: {actions}.")
    return "\n".join(parts)


def _three_d_secure(payment: Payment, required_action: bool) -> dict[str, Any]:
    if not required_action:
        outcome = "not_required"
    elif payment.status in PAYMENT_SUCCEEDED:
        outcome = "authenticated"
    else:
        outcome = "failed"
    return {"required": required_action, "outcome": outcome}


def _shown(value: Any) -> str:
    return str(value.get("display")) if isinstance(value, Mapping) else str(value)


def _money(amount: int, currency: str) -> dict[str, Any]:
    return {"amount": amount, "currency": currency, "display": str(Money(amount, currency))}
