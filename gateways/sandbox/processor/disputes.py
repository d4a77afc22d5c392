"""Sandbox disputes: Stripe-shaped chargebacks on sandbox payment intents, and what may happen to them.

A test opens a dispute on a succeeded payment (`needs_response`, evidence due seven days later on the
processor's clock), the merchant submits evidence once (`under_review`), and a test closes it (`won` or
`lost`). Each step emits the events Stripe emits. These functions run inside one processor call and
change state only through the call's `Changes`; they never touch PayQL's database.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

from gateways.sandbox.processor.errors import SandboxInvalidRequest
from gateways.sandbox.processor.objects import IntentStatus, JsonDict, SandboxPaymentIntent, new_id
from gateways.sandbox.processor.state import Changes, SandboxState, register_kind

DISPUTE: Final = "dispute"
EVIDENCE_WINDOW_SECONDS: Final = 7 * 24 * 3600
MAX_EVIDENCE_TEXT: Final = 20_000

# Stripe's dispute reasons.
REASONS: Final = frozenset(
    {
        "bank_cannot_process",
        "check_returned",
        "credit_not_processed",
        "customer_initiated",
        "debit_not_authorized",
        "duplicate",
        "fraudulent",
        "general",
        "incorrect_account_details",
        "insufficient_funds",
        "product_not_received",
        "product_unacceptable",
        "subscription_canceled",
        "unrecognized",
    }
)

# The text evidence fields Stripe's dispute object carries (files are out of the sandbox's scope).
EVIDENCE_FIELDS: Final = (
    "access_activity_log",
    "billing_address",
    "cancellation_policy_disclosure",
    "cancellation_rebuttal",
    "customer_communication",
    "customer_email_address",
    "customer_name",
    "customer_purchase_ip",
    "duplicate_charge_explanation",
    "product_description",
    "receipt",
    "refund_policy",
    "refund_policy_disclosure",
    "refund_refusal_explanation",
    "service_date",
    "shipping_address",
    "shipping_carrier",
    "shipping_date",
    "shipping_tracking_number",
    "uncategorized_text",
)


class DisputeState(StrEnum):
    NEEDS_RESPONSE = "needs_response"
    UNDER_REVIEW = "under_review"
    WON = "won"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class SandboxDispute:
    id: str
    payment_intent: str
    amount: int
    currency: str
    reason: str
    status: DisputeState
    created: int
    due_by: int
    evidence: Mapping[str, str] = field(default_factory=dict)
    submission_count: int = 0

    def to_dict(self) -> JsonDict:
        evidence: JsonDict = {name: self.evidence.get(name) for name in EVIDENCE_FIELDS}
        return {
            "id": self.id,
            "object": "dispute",
            "amount": self.amount,
            "currency": self.currency,
            "charge": None,  # the sandbox has no separate charge objects
            "payment_intent": self.payment_intent,
            "reason": self.reason,
            "status": self.status.value,
            "created": self.created,
            "evidence": evidence,
            "evidence_details": {
                "due_by": self.due_by,
                "has_evidence": bool(self.evidence),
                "past_due": False,
                "submission_count": self.submission_count,
            },
            "is_charge_refundable": False,
            "balance_transactions": [],
            "metadata": {},
            "livemode": False,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SandboxDispute:
        details = data["evidence_details"]
        evidence = data["evidence"]
        if not isinstance(details, dict) or not isinstance(evidence, dict):
            raise ValueError("evidence and evidence_details must be objects")
        return cls(
            id=_str(data, "id"),
            payment_intent=_str(data, "payment_intent"),
            amount=_int(data, "amount"),
            currency=_str(data, "currency"),
            reason=_str(data, "reason"),
            status=DisputeState(_str(data, "status")),
            created=_int(data, "created"),
            due_by=_int(details, "due_by"),
            evidence={str(k): v for k, v in evidence.items() if isinstance(v, str)},
            submission_count=_int(details, "submission_count"),
        )


register_kind(DISPUTE, SandboxDispute.from_dict)


def open_dispute(
    state: SandboxState, changes: Changes, intent: SandboxPaymentIntent, reason: str, amount: int | None
) -> SandboxDispute:
    """The cardholder disputes a succeeded payment (by default all that was not refunded): the funds are
    withdrawn and evidence is due in seven days."""
    if intent.status is not IntentStatus.SUCCEEDED:
        raise SandboxInvalidRequest("Only a succeeded payment can be disputed.", code="payment_intent_unexpected_state")
    if reason not in REASONS:
        raise SandboxInvalidRequest(f"Unknown dispute reason {reason[:40]!r}.", code="parameter_invalid")
    if any(d.payment_intent == intent.id for d in state.all(DISPUTE)):
        raise SandboxInvalidRequest("This payment is already disputed.", code="charge_disputed")
    disputable = intent.amount_received - intent.amount_refunded
    disputed = disputable if amount is None else amount
    if isinstance(disputed, bool) or not isinstance(disputed, int) or not 0 < disputed <= disputable:
        raise SandboxInvalidRequest(
            f"amount must be from 1 to {disputable} (captured and not refunded).", code="parameter_invalid"
        )
    dispute = SandboxDispute(
        id=new_id("dp"),
        payment_intent=intent.id,
        amount=disputed,
        currency=intent.currency,
        reason=reason,
        status=DisputeState.NEEDS_RESPONSE,
        created=changes.now,
        due_by=changes.now + EVIDENCE_WINDOW_SECONDS,
    )
    changes.put(DISPUTE, dispute, "charge.dispute.created", "charge.dispute.funds_withdrawn")
    return dispute


def submit_evidence(
    state: SandboxState, changes: Changes, dispute_id: str, evidence: Mapping[str, str]
) -> SandboxDispute:
    """The merchant's answer, once: the dispute goes to the issuer for review."""
    dispute = find(state, dispute_id)
    if dispute.status is not DisputeState.NEEDS_RESPONSE:
        raise SandboxInvalidRequest(
            f"Evidence can only be submitted while the dispute needs a response (it is {dispute.status.value}).",
            code="dispute_already_submitted",
        )
    unknown = sorted(set(evidence) - set(EVIDENCE_FIELDS))
    if unknown:
        raise SandboxInvalidRequest(f"Unknown evidence fields: {', '.join(unknown)[:200]}.", code="parameter_unknown")
    for name, text in evidence.items():
        if not isinstance(text, str) or len(text) > MAX_EVIDENCE_TEXT:
            raise SandboxInvalidRequest(
                f"evidence[{name}] must be text of at most {MAX_EVIDENCE_TEXT} characters.", code="parameter_invalid"
            )
    submitted = replace(
        dispute,
        status=DisputeState.UNDER_REVIEW,
        evidence={name: text for name, text in evidence.items() if text},
        submission_count=dispute.submission_count + 1,
    )
    changes.put(DISPUTE, submitted, "charge.dispute.updated")
    return submitted


def close(state: SandboxState, changes: Changes, dispute_id: str, *, won: bool) -> SandboxDispute:
    """The issuer decides: won gives the funds back to the merchant, lost leaves them with the cardholder."""
    dispute = find(state, dispute_id)
    if dispute.status in (DisputeState.WON, DisputeState.LOST):
        raise SandboxInvalidRequest(f"The dispute is already {dispute.status.value}.", code="dispute_closed")
    closed = replace(dispute, status=DisputeState.WON if won else DisputeState.LOST)
    events = ("charge.dispute.closed", "charge.dispute.funds_reinstated") if won else ("charge.dispute.closed",)
    changes.put(DISPUTE, closed, *events)
    return closed


def find(state: SandboxState, dispute_id: str) -> SandboxDispute:
    dispute = state.get(DISPUTE, dispute_id)
    if not isinstance(dispute, SandboxDispute):
        raise SandboxInvalidRequest("No such dispute.", code="resource_missing")
    return dispute


def _int(data: Mapping[str, object], key: str) -> int:
    value = data[key]
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key} must be an int")
    return value


def _str(data: Mapping[str, object], key: str) -> str:
    value = data[key]
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value
