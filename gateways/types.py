"""The data that crosses the gateway boundary: requests in, normalized results out."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from domain.money import Money
from domain.statuses import (
    CaptureMethod,
    DisputeStatus,
    InvoiceStatus,
    NextActionType,
    PaymentStatus,
    RefundStatus,
    SubscriptionStatus,
)

# The metadata key every gateway payment carries our payment id under (to find it again after a lost answer).
PAYQL_PAYMENT_ID: Final = "payql_payment_id"


@dataclass(frozen=True, slots=True)
class NextAction:
    type: NextActionType
    redirect_url: str | None = None
    client_secret: str | None = None

    def to_json(self) -> dict[str, Any]:
        """How a payment or an invoice stores it (read back by the GraphQL `NextAction`)."""
        return {"type": self.type.value, "redirect_url": self.redirect_url, "client_secret": self.client_secret}


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


# -- subscriptions (see `gateways.billing`) -----------------------------------------------------------


class ProrationMode(StrEnum):
    IMMEDIATE = "IMMEDIATE"  # switch now and invoice the prorated difference at once
    NONE = "NONE"  # switch now; the next invoice is at the new price, nothing prorated
    AT_PERIOD_END = "AT_PERIOD_END"  # switch at the next renewal (downgrades)


class SubscriptionNoticeKind(StrEnum):
    TRIAL_WILL_END = "TRIAL_WILL_END"
    INVOICE_UPCOMING = "INVOICE_UPCOMING"


@dataclass(frozen=True, slots=True)
class PlanPrice:
    """One of our recurring catalog prices as the gateway must know it (kept in step by the adapter)."""

    price_id: str  # ours
    product_id: str  # ours
    product_name: str
    unit_amount: Money
    interval: str  # DAY | WEEK | MONTH | YEAR
    interval_count: int = 1
    metered: bool = False  # billed on reported usage x unit amount, in arrears


@dataclass(frozen=True, slots=True)
class SubscriptionRequest:
    payql_subscription_id: str
    customer_id: str  # ours
    customer_email: str | None
    price: PlanPrice
    payment_method: str
    idempotency_key: str
    trial_days: int = 0
    return_url: str | None = None
    # The gateway's customer remembered from an earlier call (Customer.gateway_references); None on
    # first use, when the adapter creates one and returns it as `SubscriptionResult.customer_reference`.
    gateway_customer: str | None = None


@dataclass(frozen=True, slots=True)
class PlanChangeRequest:
    reference: str
    price: PlanPrice
    proration: ProrationMode
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class UsageReport:
    reference: str  # the subscription
    price_id: str  # ours, a metered price on the subscription
    quantity: int
    timestamp: int
    idempotency_key: str


@dataclass(frozen=True, slots=True)
class InvoiceResult:
    """One invoice as the gateway sees it. Its payment is an ordinary payment (`payment_reference`)."""

    reference: str
    subscription_reference: str
    status: InvoiceStatus
    amount_due: Money
    amount_paid: int = 0
    billing_reason: str = ""  # subscription_create | subscription_cycle | subscription_update | manual
    period_start: int | None = None
    period_end: int | None = None
    attempt_count: int = 0
    payment_reference: str | None = None
    next_action: NextAction | None = None
    decline_code: str | None = None
    created: int | None = None
    payql_subscription_id: str | None = None  # from the subscription's metadata, when the gateway echoes it


@dataclass(frozen=True, slots=True)
class SubscriptionResult:
    """One subscription as the gateway sees it, mapped onto our statuses."""

    reference: str
    status: SubscriptionStatus
    price_id: str | None  # ours (from the gateway price's metadata), None when it is not one of ours
    payql_subscription_id: str | None = None
    customer_reference: str | None = None
    current_period_start: int | None = None
    current_period_end: int | None = None
    trial_end: int | None = None
    cancel_at_period_end: bool = False
    canceled_at: int | None = None
    ended_at: int | None = None
    default_payment_method: str | None = None
    pending_price_id: str | None = None  # a change scheduled for the period end
    latest_invoice: InvoiceResult | None = None
    # When the gateway last changed it: a copy older than what we applied is never applied.
    updated: int = 0
    gateway_status: str = ""


@dataclass(frozen=True, slots=True)
class ProrationPreview:
    amount_due_now: Money  # what changing now charges (zero or a credit for a downgrade)
    next_invoice_amount: Money
    next_invoice_at: int

    @classmethod
    def from_next_period(cls, price: PlanPrice, current_period_end: int | None, now: int) -> ProrationPreview:
        """A gateway that swaps plans from the next billing date without proration: nothing is charged now, and
        the new price is billed when the current period ends (now, when the gateway gives no period end)."""
        return cls(
            amount_due_now=Money(0, price.unit_amount.currency),
            next_invoice_amount=price.unit_amount,
            next_invoice_at=current_period_end or now,
        )


@dataclass(frozen=True, slots=True)
class SubscriptionObserved:
    result: SubscriptionResult
    stale_possible: bool = True


@dataclass(frozen=True, slots=True)
class InvoiceObserved:
    """An invoice event; `event` is the normalized kind: paid | payment_failed | action_required |
    finalized | voided | uncollectible | upcoming."""

    result: InvoiceResult
    event: str
    stale_possible: bool = True


@dataclass(frozen=True, slots=True)
class SubscriptionNotice:
    """Something to tell the customer about (no state changes): a trial ending, an invoice coming."""

    subscription_reference: str
    kind: SubscriptionNoticeKind
    at: int | None = None


# -- disputes --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DisputeResult:
    reference: str
    payment_reference: str
    status: DisputeStatus
    amount: Money
    reason: str
    payql_payment_id: str | None = None
    evidence_due_by: int | None = None
    created: int | None = None
    gateway_status: str = ""


@dataclass(frozen=True, slots=True)
class DisputeEvidence:
    """What we send the gateway to contest a dispute: text fields named after Stripe's evidence fields."""

    product_description: str = ""
    customer_name: str = ""
    customer_email_address: str = ""
    customer_purchase_ip: str = ""
    billing_address: str = ""
    receipt: str = ""
    shipping_carrier: str = ""
    shipping_tracking_number: str = ""
    shipping_date: str = ""
    refund_policy: str = ""
    uncategorized_text: str = ""


@dataclass(frozen=True, slots=True)
class DisputeObserved:
    result: DisputeResult
    stale_possible: bool = True


EventEffect = (
    PaymentObserved
    | RefundObserved
    | SubscriptionObserved
    | InvoiceObserved
    | SubscriptionNotice
    | DisputeObserved
    | EventIgnored
)
