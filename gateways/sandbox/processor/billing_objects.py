"""The sandbox billing engine's own objects: prices, customers (with their test clocks), subscriptions,
invoices and usage records, in Stripe-like wire shapes (`to_dict`) and read back strictly (`from_dict`).

Like `objects.py`, these are the processor's shapes, not PayQL's: mapping onto `gateways.types` happens only
in the adapter's `billing_transformers.py`. Objects are immutable snapshots; every kind is registered with the
sandbox state so several processes sharing a state file see them. No card data may become a field here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Final

from gateways.sandbox.processor.objects import (
    JsonDict,
    _bool,
    _int,
    _opt_dict,
    _opt_int,
    _opt_str,
    _str,
    _str_map,
)
from gateways.sandbox.processor.state import register_kind

PRICE: Final = "price"
CUSTOMER: Final = "customer"
SUBSCRIPTION: Final = "subscription"
INVOICE: Final = "invoice"
USAGE_RECORD: Final = "usage_record"

# The metadata keys under which PayQL's own ids travel.
PAYQL_PRICE_ID: Final = "payql_price_id"
PAYQL_PRODUCT_ID: Final = "payql_product_id"
PAYQL_CUSTOMER_ID: Final = "payql_customer_id"
PAYQL_SUBSCRIPTION_ID: Final = "payql_subscription_id"

INTERVALS: Final = frozenset({"day", "week", "month", "year"})


class SubscriptionState(StrEnum):
    """Stripe's subscription statuses (the sandbox never moves one to `unpaid`: PayQL's dunning decides)."""

    INCOMPLETE = "incomplete"
    INCOMPLETE_EXPIRED = "incomplete_expired"
    TRIALING = "trialing"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    PAUSED = "paused"
    UNPAID = "unpaid"
    CANCELED = "canceled"


class InvoiceState(StrEnum):
    DRAFT = "draft"
    OPEN = "open"
    PAID = "paid"
    VOID = "void"
    UNCOLLECTIBLE = "uncollectible"


@dataclass(frozen=True, slots=True)
class PriceTerms:
    """A recurring price as the caller (PayQL's adapter) describes it; the engine keeps a sandbox price per set."""

    payql_price_id: str
    payql_product_id: str
    product_name: str
    unit_amount: int
    currency: str
    interval: str  # day | week | month | year
    interval_count: int = 1
    metered: bool = False


@dataclass(frozen=True, slots=True)
class SandboxPrice:
    id: str
    terms: PriceTerms
    created: int

    @property
    def metered(self) -> bool:
        return self.terms.metered

    @property
    def unit_amount(self) -> int:
        return self.terms.unit_amount

    def to_dict(self) -> JsonDict:
        terms = self.terms
        return {
            "id": self.id,
            "object": "price",
            "active": True,
            "type": "recurring",
            "billing_scheme": "per_unit",
            "currency": terms.currency,
            "unit_amount": terms.unit_amount,
            "nickname": terms.product_name,
            "product": terms.payql_product_id,
            "recurring": {
                "interval": terms.interval,
                "interval_count": terms.interval_count,
                "usage_type": "metered" if terms.metered else "licensed",
            },
            "metadata": {PAYQL_PRICE_ID: terms.payql_price_id, PAYQL_PRODUCT_ID: terms.payql_product_id},
            "created": self.created,
            "livemode": False,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SandboxPrice:
        recurring = _opt_dict(data, "recurring") or {}
        metadata = _str_map(data, "metadata")
        terms = PriceTerms(
            payql_price_id=metadata.get(PAYQL_PRICE_ID, ""),
            payql_product_id=metadata.get(PAYQL_PRODUCT_ID, ""),
            product_name=_opt_str(data, "nickname") or "",
            unit_amount=_int(data, "unit_amount"),
            currency=_str(data, "currency"),
            interval=_str(recurring, "interval"),
            interval_count=_int(recurring, "interval_count"),
            metered=_str(recurring, "usage_type") == "metered",
        )
        return cls(id=_str(data, "id"), terms=terms, created=_int(data, "created"))


@dataclass(frozen=True, slots=True)
class SandboxCustomer:
    """A customer and its test clock: `clock_offset` seconds ahead of the processor's clock, only growing."""

    id: str
    payql_customer_id: str
    email: str | None
    clock_offset: int
    created: int

    def to_dict(self) -> JsonDict:
        return {
            "id": self.id,
            "object": "customer",
            "email": self.email,
            "metadata": {PAYQL_CUSTOMER_ID: self.payql_customer_id},
            "test_clock": {"offset": self.clock_offset},
            "created": self.created,
            "livemode": False,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SandboxCustomer:
        clock = _opt_dict(data, "test_clock") or {}
        return cls(
            id=_str(data, "id"),
            payql_customer_id=_str_map(data, "metadata").get(PAYQL_CUSTOMER_ID, ""),
            email=_opt_str(data, "email"),
            clock_offset=_int(clock, "offset"),
            created=_int(data, "created"),
        )


@dataclass(frozen=True, slots=True)
class SandboxSubscription:
    """One subscription. Times are on its customer's test clock; `updated` grows on every change.

    `credit_balance` holds prorated credit (minor units) taken off the next invoices; the `*_sent`
    fields remember which notices went out, so advancing a clock never sends one twice.
    """

    id: str
    customer: str
    status: SubscriptionState
    price: SandboxPrice
    default_payment_method: str
    created: int
    billing_cycle_anchor: int
    current_period_start: int
    current_period_end: int
    updated: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    trial_start: int | None = None
    trial_end: int | None = None
    cancel_at_period_end: bool = False
    canceled_at: int | None = None
    ended_at: int | None = None
    paused_at: int | None = None
    latest_invoice: str | None = None
    pending_price: SandboxPrice | None = None
    credit_balance: int = 0
    trial_will_end_sent: bool = False
    upcoming_sent_for: int | None = None  # the period end an `invoice.upcoming` was sent for

    def to_dict(self) -> JsonDict:
        item: JsonDict = {
            "id": f"si_{self.id}",
            "object": "subscription_item",
            "price": self.price.to_dict(),
            "quantity": 1,
            "subscription": self.id,
            "current_period_start": self.current_period_start,
            "current_period_end": self.current_period_end,
        }
        return {
            "id": self.id,
            "object": "subscription",
            "customer": self.customer,
            "status": self.status.value,
            "currency": self.price.terms.currency,
            "collection_method": "charge_automatically",
            "items": {"object": "list", "data": [item], "has_more": False},
            "default_payment_method": self.default_payment_method,
            "metadata": dict(self.metadata),
            "created": self.created,
            "start_date": self.created,
            "billing_cycle_anchor": self.billing_cycle_anchor,
            "current_period_start": self.current_period_start,
            "current_period_end": self.current_period_end,
            "trial_start": self.trial_start,
            "trial_end": self.trial_end,
            "cancel_at_period_end": self.cancel_at_period_end,
            "cancel_at": self.current_period_end if self.cancel_at_period_end else None,
            "canceled_at": self.canceled_at,
            "ended_at": self.ended_at,
            "pause_collection": None if self.paused_at is None else {"behavior": "void", "resumes_at": None},
            "paused_at": self.paused_at,
            "latest_invoice": self.latest_invoice,
            "pending_price": None if self.pending_price is None else self.pending_price.to_dict(),
            "credit_balance": self.credit_balance,
            "trial_will_end_sent": self.trial_will_end_sent,
            "upcoming_sent_for": self.upcoming_sent_for,
            "updated": self.updated,
            "livemode": False,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SandboxSubscription:
        items = _opt_dict(data, "items") or {}
        listed = items.get("data")
        if not isinstance(listed, list) or len(listed) != 1 or not isinstance(listed[0], dict):
            raise ValueError("a sandbox subscription has exactly one item")
        price = _opt_dict(listed[0], "price")
        pending = _opt_dict(data, "pending_price")
        if price is None:
            raise ValueError("a subscription item has a price")
        return cls(
            id=_str(data, "id"),
            customer=_str(data, "customer"),
            status=SubscriptionState(_str(data, "status")),
            price=SandboxPrice.from_dict(price),
            default_payment_method=_str(data, "default_payment_method"),
            created=_int(data, "created"),
            billing_cycle_anchor=_int(data, "billing_cycle_anchor"),
            current_period_start=_int(data, "current_period_start"),
            current_period_end=_int(data, "current_period_end"),
            updated=_int(data, "updated"),
            metadata=_str_map(data, "metadata"),
            trial_start=_opt_int(data, "trial_start"),
            trial_end=_opt_int(data, "trial_end"),
            cancel_at_period_end=_bool(data, "cancel_at_period_end"),
            canceled_at=_opt_int(data, "canceled_at"),
            ended_at=_opt_int(data, "ended_at"),
            paused_at=_opt_int(data, "paused_at"),
            latest_invoice=_opt_str(data, "latest_invoice"),
            pending_price=None if pending is None else SandboxPrice.from_dict(pending),
            credit_balance=_int(data, "credit_balance"),
            trial_will_end_sent=_bool(data, "trial_will_end_sent"),
            upcoming_sent_for=_opt_int(data, "upcoming_sent_for"),
        )


@dataclass(frozen=True, slots=True)
class InvoiceLine:
    description: str
    amount: int  # negative for a credit
    period_start: int
    period_end: int
    price: str  # the sandbox price
    quantity: int = 1
    proration: bool = False

    def to_dict(self, currency: str) -> JsonDict:
        return {
            "object": "line_item",
            "description": self.description,
            "amount": self.amount,
            "currency": currency,
            "period": {"start": self.period_start, "end": self.period_end},
            "price": self.price,
            "quantity": self.quantity,
            "proration": self.proration,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> InvoiceLine:
        period = _opt_dict(data, "period") or {}
        return cls(
            description=_str(data, "description"),
            amount=_int(data, "amount"),
            period_start=_int(period, "start"),
            period_end=_int(period, "end"),
            price=_str(data, "price"),
            quantity=_int(data, "quantity"),
            proration=_bool(data, "proration"),
        )


@dataclass(frozen=True, slots=True)
class InvoicePayment:
    """The invoice's payment intent as the invoice last saw it (Stripe's expanded `payment_intent`)."""

    id: str
    status: str
    client_secret: str
    decline_code: str | None = None
    decline_message: str | None = None

    def to_dict(self) -> JsonDict:
        error: JsonDict | None = None
        if self.decline_code is not None:
            error = {"type": "card_error", "decline_code": self.decline_code, "message": self.decline_message}
        return {
            "id": self.id,
            "object": "payment_intent",
            "status": self.status,
            "client_secret": self.client_secret,
            "last_payment_error": error,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> InvoicePayment:
        error = _opt_dict(data, "last_payment_error")
        return cls(
            id=_str(data, "id"),
            status=_str(data, "status"),
            client_secret=_str(data, "client_secret"),
            decline_code=None if error is None else _opt_str(error, "decline_code"),
            decline_message=None if error is None else _opt_str(error, "message"),
        )


@dataclass(frozen=True, slots=True)
class SandboxInvoice:
    """One invoice of a subscription; `created` and the periods are on the customer's test clock."""

    id: str
    customer: str
    subscription: str
    status: InvoiceState
    billing_reason: str
    currency: str
    amount_due: int
    created: int
    period_start: int
    period_end: int
    lines: tuple[InvoiceLine, ...] = ()
    amount_paid: int = 0
    attempt_count: int = 0
    payment: InvoicePayment | None = None
    subscription_metadata: Mapping[str, str] = field(default_factory=dict)
    paid_at: int | None = None
    voided_at: int | None = None
    next_payment_attempt: int | None = None  # only on an upcoming invoice: when it will be charged

    def to_dict(self) -> JsonDict:
        return {
            "id": self.id,
            "object": "invoice",
            "customer": self.customer,
            "subscription": self.subscription,
            "subscription_details": {"metadata": dict(self.subscription_metadata)},
            "status": self.status.value,
            "billing_reason": self.billing_reason,
            "collection_method": "charge_automatically",
            "currency": self.currency,
            "amount_due": self.amount_due,
            "amount_paid": self.amount_paid,
            "amount_remaining": self.amount_due - self.amount_paid,
            "attempt_count": self.attempt_count,
            "attempted": self.attempt_count > 0,
            "created": self.created,
            "period_start": self.period_start,
            "period_end": self.period_end,
            "lines": {
                "object": "list",
                "data": [line.to_dict(self.currency) for line in self.lines],
                "has_more": False,
            },
            "payment_intent": None if self.payment is None else self.payment.to_dict(),
            "status_transitions": {"paid_at": self.paid_at, "voided_at": self.voided_at},
            "next_payment_attempt": self.next_payment_attempt,
            "livemode": False,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SandboxInvoice:
        details = _opt_dict(data, "subscription_details") or {}
        lines = (_opt_dict(data, "lines") or {}).get("data", [])
        if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
            raise ValueError("invoice lines must be a list of objects")
        payment = _opt_dict(data, "payment_intent")
        transitions = _opt_dict(data, "status_transitions") or {}
        return cls(
            id=_str(data, "id"),
            customer=_str(data, "customer"),
            subscription=_str(data, "subscription"),
            status=InvoiceState(_str(data, "status")),
            billing_reason=_str(data, "billing_reason"),
            currency=_str(data, "currency"),
            amount_due=_int(data, "amount_due"),
            created=_int(data, "created"),
            period_start=_int(data, "period_start"),
            period_end=_int(data, "period_end"),
            lines=tuple(InvoiceLine.from_dict(line) for line in lines),
            amount_paid=_int(data, "amount_paid"),
            attempt_count=_int(data, "attempt_count"),
            payment=None if payment is None else InvoicePayment.from_dict(payment),
            subscription_metadata=_str_map(details, "metadata"),
            paid_at=_opt_int(transitions, "paid_at"),
            voided_at=_opt_int(transitions, "voided_at"),
            next_payment_attempt=_opt_int(data, "next_payment_attempt"),
        )


@dataclass(frozen=True, slots=True)
class SandboxUsageRecord:
    """Reported usage of a metered price; it counts toward the period current when it was reported."""

    id: str
    subscription: str
    price: str  # the sandbox price
    quantity: int
    timestamp: int
    period_start: int
    created: int

    def to_dict(self) -> JsonDict:
        return {
            "id": self.id,
            "object": "usage_record",
            "subscription": self.subscription,
            "subscription_item": f"si_{self.subscription}",
            "price": self.price,
            "quantity": self.quantity,
            "timestamp": self.timestamp,
            "period_start": self.period_start,
            "created": self.created,
            "livemode": False,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> SandboxUsageRecord:
        return cls(
            id=_str(data, "id"),
            subscription=_str(data, "subscription"),
            price=_str(data, "price"),
            quantity=_int(data, "quantity"),
            timestamp=_int(data, "timestamp"),
            period_start=_int(data, "period_start"),
            created=_int(data, "created"),
        )


register_kind(PRICE, SandboxPrice.from_dict)
register_kind(CUSTOMER, SandboxCustomer.from_dict)
register_kind(SUBSCRIPTION, SandboxSubscription.from_dict)
register_kind(INVOICE, SandboxInvoice.from_dict)
register_kind(USAGE_RECORD, SandboxUsageRecord.from_dict)
