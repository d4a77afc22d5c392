"""The one place sandbox processor objects and statuses are mapped to and from PayQL's gateway types.

An unknown sandbox status maps to PENDING, never to a success; an unknown event type is ignored, with a
reason. Nothing here calls the processor.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from domain.money import Money
from domain.statuses import CaptureMethod, DisputeStatus, PaymentStatus, RefundStatus
from gateways.sandbox.authentication import authenticate_action
from gateways.sandbox.billing_transformers import billing_event_effects, is_billing_event
from gateways.sandbox.processor.disputes import DisputeState, SandboxDispute
from gateways.sandbox.processor.objects import CaptureMode, IntentStatus, SandboxPaymentIntent, SandboxRefund
from gateways.types import (
    PAYQL_PAYMENT_ID,
    DisputeObserved,
    DisputeResult,
    EventEffect,
    EventIgnored,
    PaymentObserved,
    PaymentResult,
    RefundObserved,
    RefundResult,
    VerifiedEvent,
)

# The metadata key under which PayQL sends its own payment id with a charge.

# Event types whose `data.object` is a payment intent (`charge.refunded` carries it with `amount_refunded`).
_PAYMENT_EVENTS: Final = frozenset(
    {
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.requires_action",
        "payment_intent.amount_capturable_updated",
        "payment_intent.canceled",
        "payment_intent.processing",
        "charge.refunded",
    }
)
_REFUND_EVENTS: Final = frozenset({"refund.created", "refund.updated"})
_DISPUTE_EVENTS: Final = frozenset(
    {
        "charge.dispute.created",
        "charge.dispute.updated",
        "charge.dispute.closed",
        "charge.dispute.funds_withdrawn",
        "charge.dispute.funds_reinstated",
    }
)

_PAYMENT_STATUSES: Final[Mapping[str, PaymentStatus]] = MappingProxyType(
    {
        IntentStatus.REQUIRES_ACTION: PaymentStatus.REQUIRES_ACTION,
        IntentStatus.PROCESSING: PaymentStatus.PROCESSING,
        IntentStatus.REQUIRES_CAPTURE: PaymentStatus.AUTHORIZED,
        IntentStatus.SUCCEEDED: PaymentStatus.PAID,
        IntentStatus.CANCELED: PaymentStatus.CANCELED,
        IntentStatus.REQUIRES_PAYMENT_METHOD: PaymentStatus.FAILED,
    }
)

# Stripe's refund statuses; the sandbox's refunds succeed at once, the others are its vocabulary.
_REFUND_STATUSES: Final[Mapping[str, RefundStatus]] = MappingProxyType(
    {
        "pending": RefundStatus.PENDING,
        "succeeded": RefundStatus.SUCCEEDED,
        "failed": RefundStatus.FAILED,
        "canceled": RefundStatus.CANCELED,
    }
)

# An unknown dispute status still needs a response: it never reads as won.
_DISPUTE_STATUSES: Final[Mapping[str, DisputeStatus]] = MappingProxyType(
    {
        DisputeState.NEEDS_RESPONSE: DisputeStatus.NEEDS_RESPONSE,
        DisputeState.UNDER_REVIEW: DisputeStatus.UNDER_REVIEW,
        DisputeState.WON: DisputeStatus.WON,
        DisputeState.LOST: DisputeStatus.LOST,
    }
)

_CAPTURE_MODES: Final[Mapping[CaptureMethod, CaptureMode]] = MappingProxyType(
    {CaptureMethod.AUTOMATIC: CaptureMode.AUTOMATIC, CaptureMethod.MANUAL: CaptureMode.MANUAL}
)


def payment_status(gateway_status: str) -> PaymentStatus:
    """The sandbox payment intent status as a PayQL status; anything unknown is PENDING."""
    return _PAYMENT_STATUSES.get(gateway_status, PaymentStatus.PENDING)


def refund_status(gateway_status: str) -> RefundStatus:
    return _REFUND_STATUSES.get(gateway_status, RefundStatus.PENDING)


def dispute_status(gateway_status: str) -> DisputeStatus:
    return _DISPUTE_STATUSES.get(gateway_status, DisputeStatus.NEEDS_RESPONSE)


def capture_mode(method: CaptureMethod) -> CaptureMode:
    return _CAPTURE_MODES[method]


def payment_result(intent: SandboxPaymentIntent, *, routes_url: str) -> PaymentResult:
    next_action = None
    if intent.status is IntentStatus.REQUIRES_ACTION:
        next_action = authenticate_action(routes_url, intent.id, intent.client_secret)
    return PaymentResult(
        reference=intent.id,
        status=payment_status(intent.status),
        amount=Money(intent.amount, intent.currency),
        payql_payment_id=intent.metadata.get(PAYQL_PAYMENT_ID),
        created=intent.created,
        # Held now or already turned into a capture: a partial capture's released rest is not authorized.
        amount_authorized=intent.amount_capturable + intent.amount_received,
        amount_captured=intent.amount_received,
        amount_refunded=intent.amount_refunded,
        next_action=next_action,
        gateway_status=intent.status.value,
        decline_code=intent.decline_code,
        decline_message=intent.decline_message,
    )


def refund_result(refund: SandboxRefund) -> RefundResult:
    return RefundResult(
        reference=refund.id,
        payment_reference=refund.payment_intent,
        status=refund_status(refund.status),
        amount=Money(refund.amount, refund.currency),
        gateway_status=refund.status,
    )


def dispute_result(dispute: SandboxDispute) -> DisputeResult:
    return DisputeResult(
        reference=dispute.id,
        payment_reference=dispute.payment_intent,
        status=dispute_status(dispute.status),
        amount=Money(dispute.amount, dispute.currency),
        reason=dispute.reason,
        evidence_due_by=dispute.due_by,
        created=dispute.created,
        gateway_status=dispute.status.value,
    )


def event_effects(event: VerifiedEvent, *, routes_url: str) -> list[EventEffect]:
    """What a verified sandbox event says, as normalized effects; anything else is `EventIgnored`."""
    kind = event.event_type
    if is_billing_event(kind):
        return billing_event_effects(event, routes_url=routes_url)
    if kind in _DISPUTE_EVENTS:
        return _dispute_effects(event)
    if kind not in _PAYMENT_EVENTS and kind not in _REFUND_EVENTS:
        return [EventIgnored(f"unhandled event type {kind!r}")]
    data = event.payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return [EventIgnored(f"{kind} event {event.event_id} carries no object")]
    try:
        if kind in _REFUND_EVENTS:
            return [RefundObserved(refund_result(SandboxRefund.from_dict(obj)))]
        intent = SandboxPaymentIntent.from_dict(obj)
    except (KeyError, ValueError) as exc:
        # Signed by the sandbox yet unreadable: a sender bug. Said so; the reconciliation read still sees the truth.
        return [EventIgnored(f"{kind} event {event.event_id} carries a malformed object: {exc!r}")]
    return [PaymentObserved(payment_result(intent, routes_url=routes_url))]


def _dispute_effects(event: VerifiedEvent) -> list[EventEffect]:
    data = event.payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    try:
        if not isinstance(obj, dict):
            raise ValueError("no object")
        return [DisputeObserved(dispute_result(SandboxDispute.from_dict(obj)))]
    except (KeyError, ValueError) as exc:
        return [EventIgnored(f"{event.event_type} event {event.event_id} carries a malformed dispute: {exc!r}")]
