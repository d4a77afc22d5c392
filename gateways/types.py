"""The data that crosses the gateway boundary: requests in, normalized results out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from domain.money import Money
from domain.statuses import CaptureMethod, NextActionType, PaymentStatus, RefundStatus


@dataclass(frozen=True, slots=True)
class NextAction:
    type: NextActionType
    redirect_url: str | None = None
    client_secret: str | None = None


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    """Create and confirm a payment for `amount` with a tokenized payment method."""

    amount: Money
    payment_method: str
    capture_method: CaptureMethod
    idempotency_key: str
    description: str = ""
    return_url: str | None = None
    customer_reference: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CaptureRequest:
    reference: str
    amount: Money
    idempotency_key: str
    final: bool = True


@dataclass(frozen=True, slots=True)
class VoidRequest:
    reference: str
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class RefundRequest:
    reference: str
    amount: Money
    idempotency_key: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PaymentResult:
    """What the gateway says about one payment, mapped onto our statuses."""

    reference: str
    status: PaymentStatus
    amount: Money
    # Our payment id as we sent it in the gateway's metadata, when the gateway echoes it back.
    payql_payment_id: str | None = None
    created: int | None = None
    # The customer has approved (PayPal): nothing moves until the server captures or authorizes
    # with `PaymentGateway.complete`. Whoever learns it first (the SPA's completePayment, the
    # approval webhook, reconciliation) completes; the gateway's idempotency makes the rest no-ops.
    amount_authorized: int = 0
    amount_captured: int = 0
    amount_refunded: int = 0
    next_action: NextAction | None = None
    gateway_status: str = ""
    decline_code: str | None = None
    decline_message: str | None = None
    awaiting_completion: bool = False


@dataclass(frozen=True, slots=True)
class RefundResult:
    reference: str
    payment_reference: str
    status: RefundStatus
    amount: Money
    gateway_status: str = ""
    failure_reason: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """A delivery exactly as it reached us: the raw body is what the signature covers."""

    headers: dict[str, str]  # lower-cased names
    body: bytes
    received_at: int  # epoch seconds


@dataclass(frozen=True, slots=True)
class VerifiedEvent:
    """A delivery whose signature checked out, parsed just enough to store it once by id."""

    event_id: str
    event_type: str
    created: int
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class PaymentObserved:
    """The event says something about one payment; `result` is its state as the event carries it.

    `stale_possible` is True when the event's copy of the object may be older than the truth
    (every event can be, but some types are re-read by design); the pipeline then re-reads the
    payment through `PaymentGateway.retrieve` before applying it.
    """

    result: PaymentResult
    stale_possible: bool = True


@dataclass(frozen=True, slots=True)
class RefundObserved:
    result: RefundResult


@dataclass(frozen=True, slots=True)
class EventIgnored:
    """Stored and acknowledged, but nothing to apply (an event type we do not act on)."""

    reason: str


EventEffect = PaymentObserved | RefundObserved | EventIgnored
