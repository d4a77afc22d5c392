"""The one place PayPal's wire objects (Orders v2, Payments v2, webhook events) are mapped to and from PayQL's types.

PayQL's payment reference for PayPal is the **order id**; authorizations, captures and refunds hang off the order
(`purchase_units[0].payments`). An unknown PayPal status maps to PENDING, never to a success. Nothing here does I/O.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, Final

from domain.money import Money
from domain.statuses import CaptureMethod, NextActionType, PaymentStatus, RefundStatus
from gateways.errors import WebhookRejected
from gateways.types import (
    PAYQL_PAYMENT_ID,
    ChargeRequest,
    EventEffect,
    EventIgnored,
    NextAction,
    PaymentObserved,
    PaymentResult,
    RefundObserved,
    RefundResult,
    VerifiedEvent,
)
from gateways.webhook_json import webhook_object

# PayQL's payment id travels as the purchase unit's `custom_id` (PayPal echoes it on captures and events).

# A payment reference that names a capture rather than an order (`PayPalGateway.retrieve` resolves it).
CAPTURE_PREFIX: Final = "paypal_capture:"

# Captures that moved money (refunds are tracked by amounts, not by status).
_SETTLED_CAPTURES: Final = frozenset({"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"})
# Authorizations that still hold funds.
_LIVE_AUTHORIZATIONS: Final = frozenset({"CREATED", "PARTIALLY_CAPTURED", "PENDING"})

_STATUSES: Final[Mapping[tuple[str, str], PaymentStatus]] = MappingProxyType(
    {
        ("order", "CREATED"): PaymentStatus.REQUIRES_ACTION,
        ("order", "SAVED"): PaymentStatus.REQUIRES_ACTION,
        ("order", "PAYER_ACTION_REQUIRED"): PaymentStatus.REQUIRES_ACTION,
        # Approved by the buyer but nothing moved yet: still ours to capture or authorize (`complete`).
        ("order", "APPROVED"): PaymentStatus.REQUIRES_ACTION,
        ("order", "VOIDED"): PaymentStatus.CANCELED,
        ("authorization", "CREATED"): PaymentStatus.AUTHORIZED,
        ("authorization", "PENDING"): PaymentStatus.PROCESSING,
        ("authorization", "PARTIALLY_CAPTURED"): PaymentStatus.PAID,
        ("authorization", "CAPTURED"): PaymentStatus.PAID,
        ("authorization", "VOIDED"): PaymentStatus.CANCELED,
        ("authorization", "EXPIRED"): PaymentStatus.CANCELED,
        ("authorization", "DENIED"): PaymentStatus.FAILED,
        ("capture", "COMPLETED"): PaymentStatus.PAID,
        ("capture", "PARTIALLY_REFUNDED"): PaymentStatus.PAID,
        ("capture", "REFUNDED"): PaymentStatus.PAID,
        ("capture", "PENDING"): PaymentStatus.PROCESSING,
        ("capture", "DECLINED"): PaymentStatus.FAILED,
        ("capture", "FAILED"): PaymentStatus.FAILED,
    }
)

_REFUND_STATUSES: Final[Mapping[str, RefundStatus]] = MappingProxyType(
    {
        "COMPLETED": RefundStatus.SUCCEEDED,
        "PENDING": RefundStatus.PENDING,
        "FAILED": RefundStatus.FAILED,
        "CANCELLED": RefundStatus.CANCELED,
    }
)

# Event types that say something about one payment. Their resource is an order, a capture, an authorization or
# (for REFUNDED/REVERSED) a refund; all are re-read before use (`stale_possible=True`).
_ORDER_EVENTS: Final = frozenset({"CHECKOUT.ORDER.APPROVED", "CHECKOUT.ORDER.COMPLETED"})
_CAPTURE_EVENTS: Final = frozenset(
    {"PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.PENDING", "PAYMENT.CAPTURE.DECLINED"}
)
_REFUND_EVENTS: Final = frozenset({"PAYMENT.CAPTURE.REFUNDED", "PAYMENT.CAPTURE.REVERSED"})
_AUTHORIZATION_PREFIX: Final = "PAYMENT.AUTHORIZATION."


def payment_status(kind: str, gateway_status: str) -> PaymentStatus:
    """A PayPal order/authorization/capture status as a PayQL status (`kind` names the object); unknown → PENDING."""
    return _STATUSES.get((kind, gateway_status), PaymentStatus.PENDING)


def refund_status(gateway_status: str) -> RefundStatus:
    return _REFUND_STATUSES.get(gateway_status, RefundStatus.PENDING)


def request_id(operation: str, idempotency_key: str) -> str:
    """The PayPal-Request-Id for one operation: stable for the caller's key, distinct between operations."""
    digest = hashlib.sha256(f"{operation}\0{idempotency_key}".encode()).hexdigest()[:40]
    return f"payql-{operation}-{digest}"


def amount_wire(money: Money) -> dict[str, str]:
    return {"currency_code": money.currency, "value": money.decimal_string()}


def money(raw: Any) -> Money:
    """A PayPal `{currency_code, value}` as exact minor units; refuses anything that is not exact."""
    if not isinstance(raw, Mapping):
        raise ValueError(f"not an amount: {raw!r}")
    currency = str(raw.get("currency_code", ""))
    probe = Money(0, currency)
    try:
        minor = Decimal(str(raw.get("value"))).scaleb(probe.exponent)
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {raw!r}") from None
    if minor != minor.to_integral_value():
        raise ValueError(f"amount {raw!r} has more decimals than {currency} allows")
    return Money(int(minor), currency)


def order_request(request: ChargeRequest) -> dict[str, Any]:
    """The Orders v2 create body: CAPTURE for automatic capture, AUTHORIZE for manual."""
    unit: dict[str, Any] = {"reference_id": "default", "amount": amount_wire(request.amount)}
    payql_id = request.metadata.get(PAYQL_PAYMENT_ID)
    if payql_id:
        unit["custom_id"] = payql_id[:127]
    if request.description:
        unit["description"] = request.description[:127]
    body: dict[str, Any] = {
        "intent": "CAPTURE" if request.capture_method is CaptureMethod.AUTOMATIC else "AUTHORIZE",
        "purchase_units": [unit],
    }
    if request.return_url:
        body["payment_source"] = {
            "paypal": {
                "experience_context": {
                    "return_url": request.return_url,
                    "cancel_url": request.return_url,
                    "user_action": "CONTINUE",
                }
            }
        }
    return body


def epoch(timestamp: Any) -> int | None:
    if not isinstance(timestamp, str):
        return None
    try:
        return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return None


def link(obj: Mapping[str, Any], *rels: str) -> str | None:
    for link in obj.get("links") or ():
        if isinstance(link, Mapping) and link.get("rel") in rels:
            return str(link.get("href"))
    return None


def payments_of(order: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """`purchase_units[0].payments` as lists of authorizations, captures and refunds."""
    units = order.get("purchase_units") or [{}]
    payments = units[0].get("payments") or {}
    return {kind: list(payments.get(kind) or []) for kind in ("authorizations", "captures", "refunds")}


def capture_id_of_refund(refund: Mapping[str, Any]) -> str | None:
    up = link(refund, "up")
    return up.rstrip("/").rsplit("/", 1)[-1] if up else None


def payment_result(order: Mapping[str, Any]) -> PaymentResult:
    """An order (with its authorizations, captures and refunds) as one PayQL payment."""
    unit = (order.get("purchase_units") or [{}])[0]
    amount = money(unit.get("amount"))
    payments = payments_of(order)
    captures, authorizations = payments["captures"], payments["authorizations"]
    settled = [c for c in captures if c.get("status") in _SETTLED_CAPTURES]
    captured = sum(money(c["amount"]).amount for c in settled)
    refunded = sum(money(r["amount"]).amount for r in payments["refunds"] if r.get("status") == "COMPLETED")
    held = 0
    if settled:
        kind, gateway_status = "capture", str(settled[-1].get("status"))
    elif captures:
        kind, gateway_status = "capture", str(captures[-1].get("status"))
    elif authorizations:
        kind, gateway_status = "authorization", str(authorizations[-1].get("status"))
    else:
        kind, gateway_status = "order", str(order.get("status"))
    if authorizations and authorizations[-1].get("status") in _LIVE_AUTHORIZATIONS:
        held = max(money(authorizations[-1]["amount"]).amount - captured, 0)
    status = payment_status(kind, gateway_status)
    next_action = None
    redirect = link(order, "approve", "payer-action")
    if status is PaymentStatus.REQUIRES_ACTION and redirect and order.get("status") != "APPROVED":
        next_action = NextAction(type=NextActionType.REDIRECT, redirect_url=redirect)
    declined = status is PaymentStatus.FAILED
    return PaymentResult(
        reference=str(order["id"]),
        status=status,
        amount=amount,
        payql_payment_id=unit.get("custom_id"),
        created=epoch(order.get("create_time")),
        amount_authorized=held + captured,
        amount_captured=captured,
        amount_refunded=refunded,
        next_action=next_action,
        gateway_status=f"{kind.upper()}_{gateway_status}",
        decline_code="generic_decline" if declined else None,
        decline_message=f"PayPal {kind} {gateway_status}" if declined else None,
        awaiting_completion=kind == "order" and gateway_status == "APPROVED",
    )


def refund_result(refund: Mapping[str, Any], *, order_id: str) -> RefundResult:
    gateway_status = str(refund.get("status"))
    reason = refund.get("status_details", {}).get("reason") if isinstance(refund.get("status_details"), dict) else None
    return RefundResult(
        reference=str(refund["id"]),
        payment_reference=order_id,
        status=refund_status(gateway_status),
        amount=money(refund.get("amount")),
        gateway_status=gateway_status,
        failure_reason=reason if gateway_status in ("FAILED", "CANCELLED") else None,
    )


def verified_event(body: bytes) -> VerifiedEvent:
    """Parse a delivery whose signature checked out: a JSON object with `id`, `event_type` and `create_time`."""
    value = webhook_object(body)
    event_id, event_type, created = value.get("id"), value.get("event_type"), epoch(value.get("create_time"))
    if not isinstance(event_id, str) or not event_id:
        raise WebhookRejected("event has no string id")
    if not isinstance(event_type, str) or not event_type:
        raise WebhookRejected("event has no string event_type")
    if created is None:
        raise WebhookRejected("event has no ISO 8601 create_time")
    return VerifiedEvent(event_id=event_id, event_type=event_type, created=created, payload=value)


def event_effects(event: VerifiedEvent) -> list[EventEffect]:
    """What a verified PayPal event says about one payment (always re-read first); anything else is ignored."""
    kind = event.event_type
    resource = event.payload.get("resource")
    handled = (
        kind in _ORDER_EVENTS
        or kind in _CAPTURE_EVENTS
        or kind in _REFUND_EVENTS
        or kind.startswith(_AUTHORIZATION_PREFIX)
    )
    if not handled:
        return [EventIgnored(f"unhandled event type {kind!r}")]
    if not isinstance(resource, dict):
        return [EventIgnored(f"{kind} event {event.event_id} carries no resource")]
    try:
        result = _event_result(kind, resource)
    except (KeyError, ValueError, TypeError) as exc:
        return [EventIgnored(f"{kind} event {event.event_id} carries a malformed resource: {exc!r}")]
    if result is None:
        return [EventIgnored(f"{kind} event {event.event_id} names no order; reconciliation reads it")]
    effects: list[EventEffect] = []
    if kind in _REFUND_EVENTS:
        # A refund we made is found by its id; the payment's own re-read carries the refunded amount.
        effects.append(RefundObserved(refund_result(resource, order_id=result.reference)))
    effects.append(PaymentObserved(result, stale_possible=True))
    return effects


def related_order(resource: Mapping[str, Any]) -> str | None:
    """`supplementary_data.related_ids.order_id` of a capture or authorization, when PayPal includes it."""
    related = (resource.get("supplementary_data") or {}).get("related_ids") or {}
    order_id = related.get("order_id")
    return order_id if isinstance(order_id, str) and order_id else None


def _event_result(kind: str, resource: Mapping[str, Any]) -> PaymentResult | None:
    if kind in _ORDER_EVENTS:
        return payment_result(resource)
    amount = money(resource["amount"])
    gateway_status = str(resource.get("status"))
    if kind in _REFUND_EVENTS:
        # The resource is the refund (or reversal), which names no order, only its capture (the `up` link):
        # the re-read (`PayPalGateway.retrieve`) resolves the capture to its order. Refunds we make carry our
        # payment id as their custom_id, which is how the payment is found before that.
        capture_id = capture_id_of_refund(resource)
        order_id = related_order(resource) or (f"{CAPTURE_PREFIX}{capture_id}" if capture_id else None)
        if order_id is None:
            return None
        return PaymentResult(
            reference=order_id,
            status=PaymentStatus.PAID,
            amount=amount,
            payql_payment_id=resource.get("custom_id"),
            amount_refunded=amount.amount if gateway_status == "COMPLETED" else 0,
            gateway_status=f"REFUND_{gateway_status}",
        )
    order_id = related_order(resource)
    if order_id is None:
        if kind not in _CAPTURE_EVENTS:
            return None
        order_id = f"{CAPTURE_PREFIX}{resource['id']}"
    object_kind = "capture" if kind in _CAPTURE_EVENTS else "authorization"
    status = payment_status(object_kind, gateway_status)
    captured = amount.amount if object_kind == "capture" and gateway_status in _SETTLED_CAPTURES else 0
    return PaymentResult(
        reference=order_id,
        status=status,
        amount=amount,
        payql_payment_id=resource.get("custom_id"),
        created=epoch(resource.get("create_time")),
        amount_authorized=amount.amount if status in (PaymentStatus.AUTHORIZED, PaymentStatus.PAID) else 0,
        amount_captured=captured,
        gateway_status=f"{object_kind.upper()}_{gateway_status}",
        decline_code="generic_decline" if status is PaymentStatus.FAILED else None,
    )
