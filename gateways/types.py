"""The data that crosses the gateway boundary: requests in, normalized results out."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    amount_authorized: int = 0
    amount_captured: int = 0
    amount_refunded: int = 0
    next_action: NextAction | None = None
    gateway_status: str = ""
    decline_code: str | None = None
    decline_message: str | None = None


@dataclass(frozen=True, slots=True)
class RefundResult:
    reference: str
    payment_reference: str
    status: RefundStatus
    amount: Money
    gateway_status: str = ""
    failure_reason: str | None = None
