"""The emulator's Disputes v1: a buyer's dispute on a capture (test-only), the seller's evidence, PayPal's decision
(test-only), with the JSON PayPal answers (shapes from the Disputes v1 OpenAPI description).

Reproduces: a dispute opened on a completed capture, or on a subscription's sale, is WAITING_FOR_SELLER_RESPONSE with a
`seller_response_due_date` ten days out and a `provide_evidence` link (CUSTOMER.DISPUTE.CREATED); evidence is
accepted as PayPal takes it, a multipart/form-data `input` part holding `{"evidences": [...]}` (plain JSON too),
only while the seller's response is awaited (else 422 NOT_AUTHORIZED-style `CANNOT_PROVIDE_EVIDENCE`), and moves
the dispute UNDER_REVIEW (CUSTOMER.DISPUTE.UPDATED); PayPal's decision RESOLVED with a `dispute_outcome`
(CUSTOMER.DISPUTE.RESOLVED). The disputed transaction carries the capture's custom_id (a sale's `custom`, the
subscription's custom_id) as `custom`.

Does not reproduce: inquiries and their escalation, offers, messages, appeals, accept-claim, documents
(uploaded files are ignored), the money movements a decision makes, and the capture's status changing.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.paypal_emulator.errors import api_error, not_found
from tests.paypal_emulator.ledger import Amount, Ledger, new_id, now
from tests.paypal_emulator.subscriptions import Billing

Emit = Callable[[str, Any], None]

OUTCOMES = ("RESOLVED_BUYER_FAVOUR", "RESOLVED_SELLER_FAVOUR", "CANCELED_BY_BUYER", "ACCEPTED", "DENIED")


@dataclass
class Dispute:
    id: str
    capture_id: str
    amount: Amount
    reason: str
    custom: str | None
    invoice_number: str | None
    transaction_time: str
    status: str = "WAITING_FOR_SELLER_RESPONSE"
    outcome: str | None = None
    evidences: list[dict[str, Any]] = field(default_factory=list)
    evidence_content_types: list[str] = field(default_factory=list)  # how each submission came, for tests
    create_time: str = field(default_factory=now)
    update_time: str = field(default_factory=now)
    seller_response_due_date: str = field(
        default_factory=lambda: (datetime.now(UTC) + timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    )


class Disputes:
    def __init__(self, ledger: Ledger, emit: Emit, billing: Billing | None = None) -> None:
        self.disputes: dict[str, Dispute] = {}
        self._ledger = ledger
        self._billing = billing
        self._emit = emit

    def dispute(self, dispute_id: str) -> Dispute:
        if dispute_id not in self.disputes:
            raise not_found("dispute_id", dispute_id)
        return self.disputes[dispute_id]

    def open(self, capture_id: str, *, reason: str = "MERCHANDISE_OR_SERVICE_NOT_RECEIVED") -> Dispute:
        """The buyer disputes a capture or a sale (test-only)."""
        if self._billing is not None and capture_id in self._billing.sales:
            sale = self._billing.sales[capture_id]
            dispute = Dispute(f"PP-D-{new_id(5)}", sale.id, sale.amount, reason, sale.custom, None, sale.create_time)
        else:
            capture = self._ledger.capture(capture_id)
            dispute = Dispute(
                f"PP-D-{new_id(5)}",
                capture.id,
                capture.amount,
                reason,
                capture.custom_id,
                capture.invoice_id,
                capture.create_time,
            )
        self.disputes[dispute.id] = dispute
        self._emit("CUSTOMER.DISPUTE.CREATED", dispute)
        return dispute

    def provide_evidence(self, dispute_id: str, content_type: str, raw: bytes) -> Dispute:
        dispute = self.dispute(dispute_id)
        evidences = _evidences(content_type, raw)
        if dispute.status != "WAITING_FOR_SELLER_RESPONSE":
            raise api_error(422, "CANNOT_PROVIDE_EVIDENCE")
        dispute.evidences.extend(evidences)
        dispute.evidence_content_types.append(content_type.split(";")[0])
        dispute.status, dispute.update_time = "UNDER_REVIEW", now()
        self._emit("CUSTOMER.DISPUTE.UPDATED", dispute)
        return dispute

    def resolve(self, dispute_id: str, outcome: str) -> Dispute:
        """PayPal decides (test-only)."""
        dispute = self.dispute(dispute_id)
        if outcome not in OUTCOMES:
            raise api_error(400, "INVALID_PARAMETER_VALUE", field="outcome", value=outcome)
        dispute.status, dispute.outcome, dispute.update_time = "RESOLVED", outcome, now()
        self._emit("CUSTOMER.DISPUTE.RESOLVED", dispute)
        return dispute


def _evidences(content_type: str, raw: bytes) -> list[dict[str, Any]]:
    if content_type.startswith("multipart/"):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        parts = {part.get_param("name", header="content-disposition"): part for part in message.iter_parts()}
        text = parts["input"].get_payload(decode=True) if "input" in parts else None
    else:
        text = raw
    try:
        body = json.loads(text or b"")
    except ValueError:
        raise api_error(400, "MALFORMED_REQUEST_JSON") from None
    evidences = body.get("evidences") if isinstance(body, dict) else None
    if not isinstance(evidences, list) or not evidences:
        raise api_error(400, "MISSING_REQUIRED_PARAMETER", field="/evidences")
    return evidences


def render(d: Dispute, base: str) -> dict[str, Any]:
    href = f"{base}/v1/customer/disputes/{d.id}"
    transaction: dict[str, Any] = {
        "buyer_transaction_id": f"{d.capture_id[:-3]}BUY",
        "seller_transaction_id": d.capture_id,
        "create_time": d.transaction_time,
        "transaction_status": "COMPLETED",
        "gross_amount": d.amount.wire(),
        **({"invoice_number": d.invoice_number} if d.invoice_number else {}),
        **({"custom": d.custom} if d.custom else {}),
        "buyer": {"name": "John Doe"},
        "seller": {"merchant_id": "C7CYMKZDG8D6E", "name": "PayQL Test Store"},
    }
    body: dict[str, Any] = {
        "dispute_id": d.id,
        "create_time": d.create_time,
        "update_time": d.update_time,
        "disputed_transactions": [transaction],
        "reason": d.reason,
        "status": d.status,
        "dispute_amount": d.amount.wire(),
        "dispute_life_cycle_stage": "CHARGEBACK",
        "dispute_channel": "INTERNAL",
        "seller_response_due_date": d.seller_response_due_date,
        "evidences": [{**e, "source": "SUBMITTED_BY_SELLER"} for e in d.evidences],
        "links": [_link(href, "self")],
    }
    if d.outcome is not None:
        body["dispute_outcome"] = {"outcome_code": d.outcome, "amount_refunded": d.amount.wire()}
    if d.status == "WAITING_FOR_SELLER_RESPONSE":
        body["links"] += [
            _link(f"{href}/provide-evidence", "provide_evidence", "POST"),
            _link(f"{href}/accept-claim", "accept_claim", "POST"),
        ]
    return body


def evidence_answer(d: Dispute, base: str) -> dict[str, Any]:
    """The `subsequent_action` PayPal answers provide-evidence with."""
    return {"links": [_link(f"{base}/v1/customer/disputes/{d.id}", "self")]}


def _link(href: str, rel: str, method: str = "GET") -> dict[str, str]:
    return {"href": href, "rel": rel, "method": method}
