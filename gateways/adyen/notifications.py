"""Adyen's standard notifications: verified (HTTP Basic auth on the endpoint, then every item's HMAC) and
mapped onto effects.

A delivery is `{"live", "notificationItems": [{"NotificationRequestItem": {...}}, ...]}`. Each item carries
`additionalData.hmacSignature`: HMAC-SHA256, with a hex key, over pspReference, originalReference,
merchantAccountCode, merchantReference, value, currency, eventCode and success joined by ":" — checked with the
SDK's own `Adyen.util.is_valid_hmac_notification` (constant-time compare) against every configured key, so keys
can rotate. One item that does not verify rejects the whole delivery (Adyen retries it). The event id names
every item by event code and PSP reference, so a re-sent item is stored once; `interpret_event` maps the items
one by one, in order.

Each effect is the notification's own word (`stale_possible=False`): Adyen has no API to read a payment back,
and its signed notification is the truth about our own asynchronous requests too (captures, cancellations,
refunds answer only "received").
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from Adyen.util import is_valid_hmac_notification

from domain.money import Money
from domain.statuses import DisputeStatus, PaymentStatus
from gateways.adyen.transformers import CAPTURE_METADATA, decline_code, refund_status
from gateways.errors import WebhookRejected
from gateways.types import (
    DisputeObserved,
    DisputeResult,
    EventEffect,
    EventIgnored,
    PaymentObserved,
    PaymentResult,
    RefundObserved,
    RefundResult,
    VerifiedEvent,
    WebhookDelivery,
)

_DISPUTES: Final[dict[str, DisputeStatus]] = {
    "NOTIFICATION_OF_CHARGEBACK": DisputeStatus.NEEDS_RESPONSE,
    "REQUEST_FOR_INFORMATION": DisputeStatus.NEEDS_RESPONSE,
    "CHARGEBACK": DisputeStatus.NEEDS_RESPONSE,
    "INFORMATION_SUPPLIED": DisputeStatus.UNDER_REVIEW,
    "CHARGEBACK_REVERSED": DisputeStatus.WON,
    "PREARBITRATION_WON": DisputeStatus.WON,
    "SECOND_CHARGEBACK": DisputeStatus.LOST,
    "PREARBITRATION_LOST": DisputeStatus.LOST,
}
# `additionalData.disputeStatus`, when a dispute item carries it, says more than its event code.
_DISPUTE_STATUSES: Final[dict[str, DisputeStatus]] = {
    "Undefended": DisputeStatus.NEEDS_RESPONSE,
    "Pending": DisputeStatus.UNDER_REVIEW,
    "Responded": DisputeStatus.UNDER_REVIEW,
    "Accepted": DisputeStatus.LOST,
    "Lost": DisputeStatus.LOST,
    "Won": DisputeStatus.WON,
}


class NotificationVerifier:
    """Basic auth, then every item's HMAC under any of `hmac_keys` (hex)."""

    def __init__(self, hmac_keys: Sequence[str], username: str, password: str) -> None:
        self._keys = [key for key in hmac_keys if key]
        # Unset credentials match nothing: an endpoint without Basic auth would take anyone's deliveries.
        self._expected_auth = f"{username}:{password}".encode() if username and password else None

    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        self._check_auth(delivery.headers.get("authorization", ""))
        try:
            body = json.loads(delivery.body)
        except ValueError:
            raise WebhookRejected("body is not JSON") from None
        items = body.get("notificationItems") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items:
            raise WebhookRejected("no notificationItems")
        names = []
        for wrapper in items:
            item = wrapper.get("NotificationRequestItem") if isinstance(wrapper, dict) else None
            if not isinstance(item, dict) or not self._signed(item):
                raise WebhookRejected("an item's hmacSignature does not verify with any configured key")
            names.append(f"{item.get('eventCode')}:{item.get('pspReference')}")
        codes = sorted({name.split(":", 1)[0] for name in names})
        return VerifiedEvent(
            event_id=",".join(names)[:255],
            event_type=",".join(codes)[:128],
            created=delivery.received_at,
            payload=body,
        )

    def _check_auth(self, header: str) -> None:
        scheme, _, encoded = header.partition(" ")
        try:
            given = base64.b64decode(encoded, validate=True) if scheme.lower() == "basic" else b""
        except (binascii.Error, ValueError):
            given = b""
        if self._expected_auth is None or not hmac.compare_digest(given, self._expected_auth):
            raise WebhookRejected("missing or wrong Basic auth")

    def _signed(self, item: dict[str, Any]) -> bool:
        additional = item.get("additionalData")
        if not isinstance(additional, dict) or not additional.get("hmacSignature"):
            return False
        for key in self._keys:
            try:
                if is_valid_hmac_notification(item, key):
                    return True
            except (binascii.Error, ValueError, KeyError, TypeError):
                continue  # a malformed key or item never verifies
        return False


def notification_effects(event: VerifiedEvent) -> list[EventEffect]:
    effects: list[EventEffect] = []
    for wrapper in event.payload.get("notificationItems", []):
        effects.append(item_effect(wrapper["NotificationRequestItem"]))
    return effects


def item_effect(item: Mapping[str, Any]) -> EventEffect:
    """One notification item's effect. Modifications name the payment in `originalReference`."""
    code = str(item.get("eventCode", ""))
    success = str(item.get("success", "")).lower() == "true"
    psp = str(item.get("pspReference", ""))
    original = str(item.get("originalReference") or "")
    amount = _amount(item)
    additional = item.get("additionalData") or {}
    if code == "AUTHORISATION":
        manual = additional.get(f"metadata.{CAPTURE_METADATA}") != "AUTOMATIC"
        status = PaymentStatus.FAILED
        if success:
            status = PaymentStatus.AUTHORIZED if manual else PaymentStatus.PAID
        return PaymentObserved(
            PaymentResult(
                reference=psp,
                status=status,
                amount=amount,
                payql_payment_id=str(item.get("merchantReference") or "") or None,
                amount_authorized=amount.amount if success else 0,
                amount_captured=amount.amount if status is PaymentStatus.PAID else 0,
                gateway_status=f"AUTHORISATION:{item.get('success')}",
                decline_code=None if success else decline_code(None),
                decline_message=None if success else str(item.get("reason") or "Refused"),
            ),
            stale_possible=False,
        )
    if code == "CAPTURE" and success:
        return PaymentObserved(
            PaymentResult(
                reference=original,
                status=PaymentStatus.PAID,
                amount=amount,
                amount_captured=amount.amount,
                gateway_status="CAPTURE:true",
            ),
            stale_possible=False,
        )
    if code == "CANCELLATION" and success:
        return PaymentObserved(
            PaymentResult(reference=original, status=PaymentStatus.CANCELED, amount=amount, gateway_status=code),
            stale_possible=False,
        )
    if code in ("CAPTURE", "CAPTURE_FAILED", "CANCELLATION"):
        # Nothing was moved when we asked (the payment stayed AUTHORIZED, or PAID for a cancel after
        # capture), so a refusal leaves it where it is; the reason is for operators.
        return EventIgnored(f"{code} refused for {original}: {item.get('reason') or 'no reason given'}")
    if code in ("REFUND", "REFUND_FAILED", "REFUNDED_REVERSED"):
        outcome = "true" if success and code == "REFUND" else "false"
        return RefundObserved(
            RefundResult(
                reference=psp,
                payment_reference=original,
                status=refund_status(outcome),
                amount=amount,
                gateway_status=f"{code}:{item.get('success')}",
                failure_reason=None if outcome == "true" else str(item.get("reason") or code),
            )
        )
    if code in _DISPUTES:
        return DisputeObserved(
            DisputeResult(
                reference=psp,
                payment_reference=original,
                status=_DISPUTE_STATUSES.get(str(additional.get("disputeStatus")), _DISPUTES[code]),
                payql_payment_id=str(item.get("merchantReference") or "") or None,
                amount=amount,
                reason=str(additional.get("chargebackReasonCode") or item.get("reason") or ""),
                evidence_due_by=_epoch(additional.get("defensePeriodEndsAt")),
                created=_epoch(item.get("eventDate")),
                gateway_status=code,
            ),
            stale_possible=False,
        )
    return EventIgnored(f"Adyen event {code} is not acted on")


def _amount(item: Mapping[str, Any]) -> Money:
    amount = item.get("amount") or {}
    return Money(int(amount.get("value", 0)), str(amount.get("currency", "EUR")))


def _epoch(value: object) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return int(datetime.fromisoformat(value).timestamp())
    except ValueError:
        return None
