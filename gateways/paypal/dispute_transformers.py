"""PayPal Disputes v1 objects mapped to PayQL's `DisputeResult`, our evidence mapped to PayPal's, and the
`CUSTOMER.DISPUTE.*` events. Nothing here does I/O.

The disputed transaction is a capture (`disputed_transactions[0].seller_transaction_id`); its `custom` is the
capture's custom_id, i.e. our payment id. An event can only name the capture (`CAPTURE_PREFIX` + capture id),
since PayQL's payment reference is the order: `PayPalGateway.retrieve_dispute` (the re-read every dispute event
gets) resolves the capture to its order. An unknown status or outcome never maps to WON.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from domain.statuses import DisputeStatus
from gateways.paypal.transformers import CAPTURE_PREFIX, epoch, money
from gateways.types import DisputeEvidence, DisputeObserved, DisputeResult, EventEffect, EventIgnored, VerifiedEvent

DISPUTE_EVENTS: Final = frozenset({"CUSTOMER.DISPUTE.CREATED", "CUSTOMER.DISPUTE.UPDATED", "CUSTOMER.DISPUTE.RESOLVED"})

_OPEN_STATUSES: Final[Mapping[str, DisputeStatus]] = {
    "OPEN": DisputeStatus.NEEDS_RESPONSE,
    "WAITING_FOR_SELLER_RESPONSE": DisputeStatus.NEEDS_RESPONSE,
    "WAITING_FOR_BUYER_RESPONSE": DisputeStatus.UNDER_REVIEW,
    "UNDER_REVIEW": DisputeStatus.UNDER_REVIEW,
}
_OUTCOMES: Final[Mapping[str, DisputeStatus]] = {
    "RESOLVED_SELLER_FAVOUR": DisputeStatus.WON,
    "CANCELED_BY_BUYER": DisputeStatus.WON,
    "DENIED": DisputeStatus.WON,  # the buyer's claim was denied
    "RESOLVED_BUYER_FAVOUR": DisputeStatus.LOST,
    "RESOLVED_WITH_PAYOUT": DisputeStatus.LOST,
    "ACCEPTED": DisputeStatus.LOST,  # we accepted the claim
}


def dispute_status(dispute: Mapping[str, Any]) -> DisputeStatus:
    status = str(dispute.get("status") or "")
    if status == "RESOLVED":
        outcome = str((dispute.get("dispute_outcome") or {}).get("outcome_code") or "")
        # Resolved without a known outcome: PayPal holds the money until it says who won.
        return _OUTCOMES.get(outcome, DisputeStatus.UNDER_REVIEW)
    return _OPEN_STATUSES.get(status, DisputeStatus.NEEDS_RESPONSE)


def disputed_capture(dispute: Mapping[str, Any]) -> Mapping[str, Any]:
    transactions = dispute.get("disputed_transactions") or [{}]
    first = transactions[0]
    return first if isinstance(first, Mapping) else {}


def dispute_result(dispute: Mapping[str, Any], *, payment_reference: str | None = None) -> DisputeResult:
    """`payment_reference` is the order when the caller resolved it; otherwise the capture, prefixed."""
    transaction = disputed_capture(dispute)
    capture_id = str(transaction.get("seller_transaction_id") or "")
    status = str(dispute.get("status") or "")
    outcome = (dispute.get("dispute_outcome") or {}).get("outcome_code")
    return DisputeResult(
        reference=str(dispute["dispute_id"]),
        payment_reference=payment_reference or f"{CAPTURE_PREFIX}{capture_id}",
        status=dispute_status(dispute),
        amount=money(dispute.get("dispute_amount")),
        reason=str(dispute.get("reason") or "OTHER"),
        payql_payment_id=transaction.get("custom") or None,
        evidence_due_by=epoch(dispute.get("seller_response_due_date")),
        created=epoch(dispute.get("create_time")),
        gateway_status=f"{status}_{outcome}" if outcome else status,
    )


def evidence_request(evidence: DisputeEvidence) -> dict[str, Any]:
    """Our evidence as PayPal's `evidences`: shipping as PROOF_OF_FULFILLMENT, the rest as notes (2000 characters
    each) under the closest evidence type."""
    evidences: list[dict[str, Any]] = []
    if evidence.shipping_tracking_number:
        tracking = {"carrier_name": "OTHER", "tracking_number": evidence.shipping_tracking_number}
        if evidence.shipping_carrier:
            tracking["carrier_name_other"] = evidence.shipping_carrier[:255]
        evidences.append(
            {
                "evidence_type": "PROOF_OF_FULFILLMENT",
                "evidence_info": {"tracking_info": [tracking]},
                **({"notes": f"Shipped {evidence.shipping_date}"} if evidence.shipping_date else {}),
            }
        )
    typed_notes = (
        ("ITEM_DESCRIPTION", evidence.product_description),
        ("PROOF_OF_RECEIPT_COPY", evidence.receipt),
        ("RETURN_POLICY", evidence.refund_policy),
    )
    for evidence_type, text in typed_notes:
        if text:
            evidences.append({"evidence_type": evidence_type, "notes": text[:2000]})
    customer = (
        ("Customer name", evidence.customer_name),
        ("Customer email", evidence.customer_email_address),
        ("Purchase IP", evidence.customer_purchase_ip),
        ("Billing address", evidence.billing_address),
        ("Notes", evidence.uncategorized_text),
    )
    other = "\n".join(f"{label}: {text}" for label, text in customer if text)
    if other:
        evidences.append({"evidence_type": "OTHER", "notes": other[:2000]})
    return {"evidences": evidences}


def dispute_effects(event: VerifiedEvent) -> list[EventEffect]:
    resource = event.payload.get("resource")
    if not isinstance(resource, dict):
        return [EventIgnored(f"{event.event_type} event {event.event_id} carries no resource")]
    try:
        return [DisputeObserved(dispute_result(resource), stale_possible=True)]
    except (KeyError, ValueError, TypeError) as exc:
        return [EventIgnored(f"{event.event_type} event {event.event_id} carries a malformed resource: {exc!r}")]
