"""Adyen's wire shapes to and from PayQL's: the `/payments` request, the payment's status, its action.

Adyen's `resultCode` is mapped onto `PaymentStatus` in `payment_status` only; an unknown code is PENDING.
Never touches PayQL's database or settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from domain.money import Money
from domain.statuses import CaptureMethod, NextActionType, PaymentStatus, RefundStatus
from gateways.errors import InvalidGatewayRequest
from gateways.types import PAYQL_PAYMENT_ID, ChargeRequest, NextAction, PaymentResult

# Our metadata key telling a notification how the payment captures (Adyen echoes `metadata.*` in it).
CAPTURE_METADATA: Final = "payql_capture_method"
_MAX_IDEMPOTENCY_KEY: Final = 64  # Adyen's limit
_MAX_REFERENCE: Final = 80
# Fields a Drop-in / Components card never carries in clear: their presence means raw card data.
_RAW_CARD_FIELDS: Final = frozenset({"number", "cvc", "expiryMonth", "expiryYear", "holderName_raw"})
_ACTION_CODES: Final = frozenset({"RedirectShopper", "ChallengeShopper", "IdentifyShopper", "PresentToShopper"})
# refusalReasonCode (https://docs.adyen.com/development-resources/refusal-reasons) → our decline codes.
_DECLINES: Final[dict[str, str]] = {"6": "expired_card", "12": "insufficient_funds", "24": "card_declined"}


def idempotency_key(ours: str) -> str:
    """Adyen's Idempotency-Key for one of ours: the same key when it fits, else its SHA-256 (64 hex)."""
    if len(ours) <= _MAX_IDEMPOTENCY_KEY:
        return ours
    return hashlib.sha256(ours.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class DropInData:
    """What the SPA sent: Drop-in's `state.data.paymentMethod`, and whether the shopper asked to store the card
    (`state.data.storePaymentMethod`, when the SPA sends `{"paymentMethod": ..., "storePaymentMethod": true}`)."""

    method: dict[str, Any]
    store: bool = False


def parse_payment_method(raw: str) -> DropInData:
    """The payment method Drop-in / Components produced, sent by the SPA as JSON text: `state.data.paymentMethod`
    itself, or `{"paymentMethod": ..., "storePaymentMethod": ...}` (that part of `state.data`).

    Card data is accepted only encrypted (`encrypted*` fields) or as a stored payment method id; a clear card
    number is refused here, before anything is sent."""
    try:
        sent = json.loads(raw)
    except ValueError:
        raise InvalidGatewayRequest(
            "The payment method is not Adyen Drop-in data.", detail="paymentMethod is not JSON"
        ) from None
    store = False
    if isinstance(sent, dict) and isinstance(sent.get("paymentMethod"), dict):
        store = sent.get("storePaymentMethod") is True
        sent = sent["paymentMethod"]
    if not isinstance(sent, dict) or not isinstance(sent.get("type"), str):
        raise InvalidGatewayRequest("The payment method is not Adyen Drop-in data.", detail="paymentMethod has no type")
    if _RAW_CARD_FIELDS & sent.keys():
        raise InvalidGatewayRequest(
            "Card details must be encrypted by Adyen's Drop-in or Components.",
            detail="paymentMethod carries clear card fields; refused before calling Adyen",
        )
    return DropInData(sent, store)


def payment_request(request: ChargeRequest, merchant_account: str, sent: DropInData) -> dict[str, Any]:
    """The `/payments` body. A stored card (`storedPaymentMethodId`) is a shopper-present card-on-file payment
    (`ContAuth`, `CardOnFile`) of the shopper it was stored for; a card the shopper asks to store is stored under
    our customer as `shopperReference`, for card-on-file use."""
    manual = request.capture_method is CaptureMethod.MANUAL
    reference = request.metadata.get(PAYQL_PAYMENT_ID) or request.idempotency_key
    metadata = {**request.metadata, CAPTURE_METADATA: str(request.capture_method)}
    body: dict[str, Any] = {
        "amount": {"value": request.amount.amount, "currency": request.amount.currency},
        "merchantAccount": merchant_account,
        "paymentMethod": dict(sent.method),
        "reference": reference[:_MAX_REFERENCE],
        "returnUrl": request.return_url or "",
        "metadata": metadata,
        "channel": "Web",
    }
    if manual:
        body["additionalData"] = {"manualCapture": "true"}
    else:
        body["captureDelayHours"] = 0
    if request.description:
        body["shopperStatement"] = request.description[:22]
    stored = "storedPaymentMethodId" in sent.method
    if (stored or sent.store) and not request.customer_reference:
        raise InvalidGatewayRequest(
            "A saved card needs a signed-in customer.",
            detail="storedPaymentMethodId or storePaymentMethod without a shopperReference",
        )
    if request.customer_reference:
        body["shopperReference"] = request.customer_reference
    if stored:
        body.update(shopperInteraction="ContAuth", recurringProcessingModel="CardOnFile")
    elif sent.store:
        body.update(shopperInteraction="Ecommerce", recurringProcessingModel="CardOnFile", storePaymentMethod=True)
    return body


def payment_status(result_code: str, *, manual: bool = True) -> PaymentStatus:
    """Adyen's `resultCode` as our status; Authorised is PAID only for an immediate automatic capture."""
    if result_code == "Authorised":
        return PaymentStatus.AUTHORIZED if manual else PaymentStatus.PAID
    if result_code in ("Refused", "Error", "Cancelled"):
        return PaymentStatus.FAILED
    if result_code in _ACTION_CODES:
        return PaymentStatus.REQUIRES_ACTION
    if result_code in ("Pending", "Received"):
        return PaymentStatus.PROCESSING
    return PaymentStatus.PENDING


def refund_status(outcome: str) -> RefundStatus:
    """A refund request's status: "received" (the API's answer) is PENDING until the REFUND notification's
    `success` says "true" or "false"."""
    return {"true": RefundStatus.SUCCEEDED, "false": RefundStatus.FAILED}.get(outcome, RefundStatus.PENDING)


def decline_code(refusal_reason_code: str | None) -> str:
    return _DECLINES.get(refusal_reason_code or "", "generic_decline")


def next_action(action: Mapping[str, Any] | None) -> NextAction | None:
    """A GET redirect is a REDIRECT; any other action (3-D Secure 2, a POST redirect) is handed whole, as JSON,
    to Drop-in's `handleAction` in the SPA."""
    if not action:
        return None
    if action.get("type") == "redirect" and action.get("method", "GET") == "GET" and action.get("url"):
        return NextAction(NextActionType.REDIRECT, redirect_url=str(action["url"]))
    return NextAction(NextActionType.CONFIRM_WITH_SDK, client_secret=json.dumps(dict(action)))


def payment_result(
    answer: Mapping[str, Any], *, amount: Money, manual: bool, payql_payment_id: str | None
) -> PaymentResult:
    """A `/payments` or `/payments/details` answer (any result code but Refused, which raises)."""
    code = str(answer.get("resultCode", ""))
    status = payment_status(code, manual=manual)
    authorized = amount.amount if status in (PaymentStatus.AUTHORIZED, PaymentStatus.PAID) else 0
    return PaymentResult(
        reference=str(answer["pspReference"]),
        status=status,
        amount=amount,
        payql_payment_id=payql_payment_id,
        amount_authorized=authorized,
        amount_captured=amount.amount if status is PaymentStatus.PAID else 0,
        next_action=next_action(answer.get("action")) if status is PaymentStatus.REQUIRES_ACTION else None,
        gateway_status=code,
    )
