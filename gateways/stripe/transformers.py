"""The one place Stripe's wire objects are mapped onto PayQL's gateway types.

Everything here works on plain JSON mappings (an SDK object after `to_dict()`, or a webhook's
`data.object`), so an API answer and a verified event go through the same code. Nothing here calls Stripe.
An unknown PaymentIntent status maps to PENDING, never to a success; an unknown event type is ignored,
with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final, Literal

from domain.money import Money
from domain.statuses import CaptureMethod, NextActionType, PaymentStatus, RefundStatus
from gateways.errors import DECLINE_CODES
from gateways.stripe.fields import field_int, field_optional_int, field_optional_str, field_reference, field_str
from gateways.types import (
    PAYQL_PAYMENT_ID,
    EventEffect,
    EventIgnored,
    NextAction,
    PaymentObserved,
    PaymentResult,
    RefundObserved,
    RefundResult,
    VerifiedEvent,
)

# The metadata key under which PayQL sends its own payment id with a charge (Stripe copies it to the charge).

# Event types whose `data.object` is a PaymentIntent.
PAYMENT_INTENT_EVENTS: Final = frozenset(
    {
        "payment_intent.created",
        "payment_intent.succeeded",
        "payment_intent.payment_failed",
        "payment_intent.requires_action",
        "payment_intent.amount_capturable_updated",
        "payment_intent.canceled",
        "payment_intent.processing",
    }
)
# Event types whose `data.object` is a Charge that belongs to a PaymentIntent.
CHARGE_EVENTS: Final = frozenset({"charge.refunded"})
# Event types whose `data.object` is a Refund.
REFUND_EVENTS: Final = frozenset({"charge.refund.updated", "refund.created", "refund.updated", "refund.failed"})

_INTENT_STATUSES: Final[Mapping[str, PaymentStatus]] = MappingProxyType(
    {
        "requires_confirmation": PaymentStatus.PENDING,
        "requires_action": PaymentStatus.REQUIRES_ACTION,
        "processing": PaymentStatus.PROCESSING,
        "requires_capture": PaymentStatus.AUTHORIZED,
        "succeeded": PaymentStatus.PAID,
        "canceled": PaymentStatus.CANCELED,
    }
)

_REFUND_STATUSES: Final[Mapping[str, RefundStatus]] = MappingProxyType(
    {
        "pending": RefundStatus.PENDING,
        "requires_action": RefundStatus.PENDING,
        "succeeded": RefundStatus.SUCCEEDED,
        "failed": RefundStatus.FAILED,
        "canceled": RefundStatus.CANCELED,
    }
)

StripeCaptureMethod = Literal["automatic", "manual"]
StripeRefundReason = Literal["duplicate", "fraudulent", "requested_by_customer"]

_CAPTURE_METHODS: Final[Mapping[CaptureMethod, StripeCaptureMethod]] = MappingProxyType(
    {CaptureMethod.AUTOMATIC: "automatic", CaptureMethod.MANUAL: "manual"}
)

# Stripe error / decline codes that mean one of our normalized decline codes (see `gateways.errors.DECLINE_CODES`).
_DECLINE_ALIASES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "do_not_honor": "generic_decline",
        "insufficient_funds": "insufficient_funds",
        "withdrawal_count_limit_exceeded": "insufficient_funds",
        "expired_card": "expired_card",
        "processing_error": "processing_error",
        "try_again_later": "processing_error",
        "issuer_not_available": "processing_error",
        "reenter_transaction": "processing_error",
        "authentication_required": "authentication_required",
        "payment_intent_authentication_failure": "authentication_required",
    }
)

# Stripe's own refund reasons; anything else PayQL says is sent as metadata only.
_REFUND_REASONS: Final[Mapping[str, StripeRefundReason]] = MappingProxyType(
    {"duplicate": "duplicate", "fraudulent": "fraudulent", "requested_by_customer": "requested_by_customer"}
)


def payment_status(gateway_status: str, *, has_payment_error: bool = False) -> PaymentStatus:
    """A PaymentIntent status as a PayQL status: the one mapping. Anything unknown is PENDING.

    `requires_payment_method` is FAILED after an attempt failed (there is a `last_payment_error`), and
    PENDING for an intent no one has tried to pay yet.
    """
    if gateway_status == "requires_payment_method":
        return PaymentStatus.FAILED if has_payment_error else PaymentStatus.PENDING
    return _INTENT_STATUSES.get(gateway_status, PaymentStatus.PENDING)


def refund_status(gateway_status: str) -> RefundStatus:
    return _REFUND_STATUSES.get(gateway_status, RefundStatus.PENDING)


def capture_method(method: CaptureMethod) -> StripeCaptureMethod:
    return _CAPTURE_METHODS[method]


def refund_reason(reason: str) -> StripeRefundReason | None:
    """PayQL's refund reason as one of Stripe's, or None when Stripe has no such reason."""
    return _REFUND_REASONS.get(reason)


def decline_code(code: str | None, stripe_decline_code: str | None = None) -> str:
    """Stripe's `decline_code` (the issuer's reason) or error `code`, as a key of `DECLINE_CODES`."""
    for candidate in (stripe_decline_code, code):
        if not candidate:
            continue
        if candidate in _DECLINE_ALIASES:
            return _DECLINE_ALIASES[candidate]
        if candidate in DECLINE_CODES and candidate != "card_declined":
            return candidate
    return "card_declined" if code == "card_declined" else "generic_decline"


def payment_result(intent: Mapping[str, Any]) -> PaymentResult:
    """A PaymentIntent (with `latest_charge` as an id, an expanded object or absent) as a `PaymentResult`."""
    status = field_str(intent, "status")
    amount = field_int(intent, "amount")
    error = intent.get("last_payment_error")
    error = error if isinstance(error, Mapping) else None
    charge = intent.get("latest_charge")
    charge = charge if isinstance(charge, Mapping) else None

    received = field_optional_int(intent, "amount_received")
    captured = received if received is not None else _charge_captured(charge)
    capturable = field_optional_int(intent, "amount_capturable")
    if capturable is None:
        capturable = amount if status == "requires_capture" else 0
    refunded = field_int(charge, "amount_refunded") if charge is not None else field_int(intent, "amount_refunded")

    next_action = None
    if status == "requires_action":
        next_action = NextAction(
            type=NextActionType.CONFIRM_WITH_SDK,
            client_secret=field_optional_str(intent, "client_secret"),
            redirect_url=_redirect_url(intent.get("next_action")),
        )
    return PaymentResult(
        reference=field_str(intent, "id"),
        status=payment_status(status, has_payment_error=error is not None),
        amount=Money(amount, field_str(intent, "currency")),
        payql_payment_id=_metadata_id(intent),
        created=field_optional_int(intent, "created"),
        # Held now or already turned into a capture: a partial capture's released rest is not authorized.
        amount_authorized=capturable + captured,
        amount_captured=captured,
        amount_refunded=refunded,
        next_action=next_action,
        gateway_status=status,
        decline_code=_error_decline_code(error),
        decline_message=field_optional_str(error, "message") if error else None,
    )


def charge_payment_result(charge: Mapping[str, Any]) -> PaymentResult:
    """A Charge's view of its PaymentIntent (for `charge.*` events); the caller re-reads the intent."""
    intent_id = field_reference(charge.get("payment_intent"))
    if intent_id is None:
        raise ValueError("charge has no payment_intent (a legacy Charges API charge)")
    status = field_str(charge, "status")
    captured = _charge_captured(charge)
    if status == "succeeded":
        payment = PaymentStatus.PAID if charge.get("captured") else PaymentStatus.AUTHORIZED
    elif status == "failed":
        payment = PaymentStatus.FAILED
    else:
        payment = PaymentStatus.PROCESSING if status == "pending" else PaymentStatus.PENDING
    amount = field_int(charge, "amount")
    return PaymentResult(
        reference=intent_id,
        status=payment,
        amount=Money(amount, field_str(charge, "currency")),
        payql_payment_id=_metadata_id(charge),
        created=None,  # the charge's own `created` is not the intent's
        # Once captured, only the captured part stays authorized (a partial capture releases the rest).
        amount_authorized=(captured if charge.get("captured") else amount) if status == "succeeded" else 0,
        amount_captured=captured,
        amount_refunded=field_int(charge, "amount_refunded"),
        gateway_status=f"charge.{status}",
        decline_code=decline_code(field_optional_str(charge, "failure_code")) if status == "failed" else None,
        decline_message=field_optional_str(charge, "failure_message") if status == "failed" else None,
    )


def refund_result(refund: Mapping[str, Any], *, payment_reference: str | None = None) -> RefundResult:
    """A Refund as a `RefundResult`; `payment_reference` is used when the refund does not name its intent."""
    reference = field_reference(refund.get("payment_intent")) or payment_reference
    if reference is None:
        raise ValueError("refund has no payment_intent")
    status = field_str(refund, "status")
    return RefundResult(
        reference=field_str(refund, "id"),
        payment_reference=reference,
        status=refund_status(status),
        amount=Money(field_int(refund, "amount"), field_str(refund, "currency")),
        gateway_status=status,
        failure_reason=field_optional_str(refund, "failure_reason"),
    )


def event_effects(event: VerifiedEvent) -> list[EventEffect]:
    """What a verified Stripe event says, as normalized effects; anything else is `EventIgnored`.

    Every `PaymentObserved` keeps `stale_possible=True`: Stripe delivers snapshots, possibly out of order,
    and a `charge.*` event only carries the charge, so the pipeline re-reads the intent before applying it.
    """
    kind = event.event_type
    if kind not in PAYMENT_INTENT_EVENTS and kind not in CHARGE_EVENTS and kind not in REFUND_EVENTS:
        return [EventIgnored(f"unhandled event type {kind!r}")]
    data = event.payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    if not isinstance(obj, dict):
        return [EventIgnored(f"{kind} event {event.event_id} carries no object")]
    try:
        if kind in REFUND_EVENTS:
            return [RefundObserved(refund_result(obj))]
        if kind in CHARGE_EVENTS:
            return [PaymentObserved(charge_payment_result(obj), stale_possible=True)]
        return [PaymentObserved(payment_result(obj), stale_possible=True)]
    except (KeyError, TypeError, ValueError) as exc:
        # Signed by Stripe yet unreadable here: said so; the reconciliation read still sees the truth.
        return [EventIgnored(f"{kind} event {event.event_id} carries an unreadable object: {exc!r}")]


def _error_decline_code(error: Mapping[str, Any] | None) -> str | None:
    if error is None:
        return None
    return decline_code(field_optional_str(error, "code"), field_optional_str(error, "decline_code"))


def _charge_captured(charge: Mapping[str, Any] | None) -> int:
    if charge is None or charge.get("status") != "succeeded":
        return 0
    captured = field_optional_int(charge, "amount_captured")
    if captured is not None:
        return captured
    # Older shapes (and localstripe) have no `amount_captured`: a captured charge captured its amount.
    return field_int(charge, "amount") if charge.get("captured") else 0


def _redirect_url(next_action: object) -> str | None:
    if not isinstance(next_action, Mapping):
        return None
    redirect = next_action.get("redirect_to_url")
    if isinstance(redirect, Mapping) and isinstance(redirect.get("url"), str):
        return str(redirect["url"])
    return None


def _metadata_id(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    value = metadata.get(PAYQL_PAYMENT_ID) if isinstance(metadata, Mapping) else None
    return value if isinstance(value, str) and value else None
