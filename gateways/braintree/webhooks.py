"""Braintree's webhook deliveries: verified with the SDK's own parser, read back from storage, and interpreted.

Braintree posts a form-encoded body (`bt_signature=...&bt_payload=...`): the payload is a base64 XML
notification, the signature `public_key|hex(HMAC-SHA1(sha1(private_key), payload))` (pairs joined by `&`). The
SDK's `webhook_notification.parse` checks it in constant time for one key pair; we try each configured pair, so
keys can rotate. A notification has no id: the SHA-256 of its signed payload (which holds its timestamp, kind and
subject) stores it once, and a redelivery of the same notification is a duplicate. Its timestamp must be within
`TOLERANCE` of reception (Braintree retries a failed delivery for a day, with the same payload).

Interpretation: transaction, dispute and subscription notifications name objects that `retrieve`,
`retrieve_dispute` and `retrieve_subscription` re-read (the pipeline applies the gateway's answer, not the event's
copy); a subscription's re-read carries its newest charge as the latest invoice.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any, Final
from urllib.parse import parse_qs

from domain.money import Money
from domain.statuses import SubscriptionStatus
from gateways.braintree.sdk import braintree
from gateways.braintree.transformers import dispute_status, epoch, minor_units, payment_status
from gateways.errors import WebhookRejected
from gateways.types import (
    DisputeObserved,
    DisputeResult,
    EventEffect,
    EventIgnored,
    PaymentObserved,
    PaymentResult,
    SubscriptionObserved,
    SubscriptionResult,
    VerifiedEvent,
    WebhookDelivery,
)

TOLERANCE: Final = 2 * 24 * 3600
InvalidSignatureError = braintree.exceptions.invalid_signature_error.InvalidSignatureError
XmlUtil = braintree.util.xml_util.XmlUtil
_TRANSACTION_KINDS: Final = frozenset(
    {"transaction_settled", "transaction_settlement_declined", "transaction_disbursed", "transaction_reviewed"}
)
_DISPUTE_PREFIX: Final = "dispute_"
_SUBSCRIPTION_PREFIX: Final = "subscription_"


class BraintreeDeliveryVerifier:
    """Checks `bt_signature` over `bt_payload` with every configured key pair (the SDK's parser, per pair)."""

    def __init__(self, key_pairs: Sequence[tuple[str, str]], *, tolerance: int = TOLERANCE) -> None:
        # Parsing needs no network: these SDK gateways only hold a key pair each.
        self._parsers = [
            braintree.BraintreeGateway(
                braintree.Configuration(braintree.Environment.Sandbox, "webhooks", public, private)
            ).webhook_notification
            for public, private in key_pairs
        ]
        self._tolerance = tolerance

    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        signature, payload = _form_fields(delivery.body)
        notification = None
        for parser in self._parsers:
            try:
                notification = parser.parse(signature, payload)
            except InvalidSignatureError:
                continue
            break
        if notification is None:
            raise WebhookRejected("bt_signature does not verify for any configured key pair")
        sent = epoch(notification.timestamp)
        if sent is None or abs(delivery.received_at - sent) > self._tolerance:
            raise WebhookRejected(f"notification timestamp {notification.timestamp} outside the window")
        document = _document(payload)
        return VerifiedEvent(
            event_id=hashlib.sha256(payload.encode()).hexdigest(),
            event_type=str(notification.kind),
            created=sent,
            payload=document,
        )


def _form_fields(body: bytes) -> tuple[str, str]:
    try:
        fields = parse_qs(body.decode("ascii"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        raise WebhookRejected("body is not a form with bt_signature and bt_payload") from None
    signature, payload = fields.get("bt_signature", []), fields.get("bt_payload", [])
    if len(signature) != 1 or len(payload) != 1:
        raise WebhookRejected("body is not a form with bt_signature and bt_payload")
    return signature[0], payload[0]


def _document(payload: str) -> dict[str, Any]:
    """The notification's XML as the SDK reads it (`notification` → kind, timestamp, subject), `created` added."""
    try:
        parsed = XmlUtil.dict_from_xml(base64.b64decode(payload))
    except Exception as exc:
        raise WebhookRejected(f"bt_payload is not a notification: {type(exc).__name__}") from None
    notification = parsed.get("notification") if isinstance(parsed, dict) else None
    if not isinstance(notification, dict):
        raise WebhookRejected("bt_payload is not a notification")
    timestamp = notification.get("timestamp")
    return {**notification, "created": epoch(timestamp) if isinstance(timestamp, datetime) else 0}


def stored_payload(body: str) -> dict[str, Any]:
    """A stored delivery's notification (its signature was checked when it arrived)."""
    _, payload = _form_fields(body.encode("ascii"))
    return _document(payload)


def interpret(event: VerifiedEvent) -> list[EventEffect]:
    kind = event.event_type
    subject = event.payload.get("subject") or {}
    if kind in _TRANSACTION_KINDS and isinstance(subject.get("transaction"), dict):
        return [PaymentObserved(_payment_hint(subject["transaction"]))]
    if kind.startswith(_DISPUTE_PREFIX) and isinstance(subject.get("dispute"), dict):
        return [DisputeObserved(_dispute_hint(subject["dispute"]))]
    if kind.startswith(_SUBSCRIPTION_PREFIX) and isinstance(subject.get("subscription"), dict):
        return [SubscriptionObserved(_subscription_hint(subject["subscription"]))]
    return [EventIgnored(f"{kind} is not acted on")]


def _payment_hint(transaction: dict[str, Any]) -> PaymentResult:
    """The event's copy, only good for finding the payment: the pipeline re-reads the transaction."""
    currency = str(transaction.get("currency_iso_code") or "USD")
    amount = minor_units(Decimal(str(transaction.get("amount") or 0)), currency)
    return PaymentResult(
        reference=str(transaction.get("id")),
        status=payment_status(str(transaction.get("status") or "")),
        amount=Money(amount, currency),
        payql_payment_id=transaction.get("order_id") or None,
        gateway_status=str(transaction.get("status") or ""),
    )


def _subscription_hint(subscription: dict[str, Any]) -> SubscriptionResult:
    """Only good for finding our subscription (its id is ours): the pipeline re-reads it, and the re-read brings
    its newest charge as the latest invoice (paid, or failed and owed), so a charge notification needs no more."""
    return SubscriptionResult(
        reference=str(subscription.get("id")),
        status=SubscriptionStatus.INCOMPLETE,
        price_id=None,
        payql_subscription_id=str(subscription.get("id")),
        gateway_status=str(subscription.get("status") or ""),
    )


def _dispute_hint(dispute: dict[str, Any]) -> DisputeResult:
    currency = str(dispute.get("currency_iso_code") or "USD")
    transaction = dispute.get("transaction") or {}
    status = dispute_status(str(dispute.get("status") or ""))
    return DisputeResult(
        reference=str(dispute.get("id")),
        payment_reference=str(transaction.get("id") or ""),
        status=status,
        amount=Money(minor_units(Decimal(str(dispute.get("amount") or 0)), currency), currency),
        reason=str(dispute.get("reason") or ""),
        payql_payment_id=transaction.get("order_id") or None,
        created=epoch(dispute.get("created_at")) if isinstance(dispute.get("created_at"), datetime) else None,
        gateway_status=str(dispute.get("status") or ""),
    )
