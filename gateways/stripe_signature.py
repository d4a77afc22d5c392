"""Webhook signatures in Stripe's scheme, shared by every gateway that speaks it (Stripe; the sandbox, which
signs its deliveries the same way), and the parsing of a verified body into an event.

No provider owns this module: a gateway package imports it, never another provider's package.

The header is `t=<unix seconds>,v1=<hex HMAC-SHA256 of f"{t}.{raw body}">`, possibly with several `v1`
entries (one per secret while a secret rotates) and other schemes, which are ignored. Verification tries
every configured secret against every `v1` entry in constant time, then checks the timestamp window.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import Final

from gateways.errors import WebhookRejected
from gateways.types import VerifiedEvent, WebhookDelivery
from gateways.webhook_json import webhook_object

SIGNATURE_HEADER: Final = "stripe-signature"
TOLERANCE_SECONDS: Final = 300
_MAX_HEADER_LENGTH: Final = 4096


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The hex HMAC-SHA256 of `f"{timestamp}.{body}"` with `secret`."""
    signed = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The `stripe-signature` header value for `body` sent at `timestamp`."""
    return f"t={timestamp},v1={signature(secret, timestamp, body)}"


def verify_signature(
    header: str | None, body: bytes, secrets: Sequence[str], *, now: int, tolerance: int = TOLERANCE_SECONDS
) -> int:
    """Check `header` against `body` with every secret and `now`; return the signed timestamp.

    Raises `WebhookRejected` for a missing or garbled header, no matching signature, or a timestamp
    more than `tolerance` seconds away from `now` in either direction.
    """
    if not secrets:
        raise WebhookRejected("no webhook signing secret is configured")
    if not header:
        raise WebhookRejected(f"missing {SIGNATURE_HEADER} header")
    timestamp, candidates = _parse(header)
    expected = [signature(secret, timestamp, body).encode() for secret in secrets]
    # Every pair is compared (no early exit), each in constant time.
    matches = [hmac.compare_digest(want, got) for want in expected for got in candidates]
    if not any(matches):
        raise WebhookRejected("no v1 signature matches any configured secret")
    if timestamp < now - tolerance:
        raise WebhookRejected(f"signature timestamp is {now - timestamp}s old (tolerance {tolerance}s)")
    if timestamp > now + tolerance:
        raise WebhookRejected(f"signature timestamp is {timestamp - now}s in the future (tolerance {tolerance}s)")
    return timestamp


def _parse(header: str) -> tuple[int, list[bytes]]:
    if len(header) > _MAX_HEADER_LENGTH:
        raise WebhookRejected(f"{SIGNATURE_HEADER} header is too long")
    timestamps: list[str] = []
    candidates: list[bytes] = []
    for item in header.split(","):
        name, separator, value = item.strip().partition("=")
        if not separator:
            raise WebhookRejected(f"garbled {SIGNATURE_HEADER} header")
        if name == "t":
            timestamps.append(value)
        elif name == "v1":
            candidates.append(value.encode("utf-8", "replace"))
    if len(timestamps) != 1 or not (timestamps[0].isascii() and timestamps[0].isdigit()) or len(timestamps[0]) > 12:
        raise WebhookRejected(f"{SIGNATURE_HEADER} header has no valid timestamp")
    if not candidates:
        raise WebhookRejected(f"{SIGNATURE_HEADER} header has no v1 signature")
    return int(timestamps[0]), candidates


def verified_event(body: bytes) -> VerifiedEvent:
    """Parse a delivery body whose signature checked out: a JSON object with `id`, `type` and `created`."""
    value = webhook_object(body)
    event_id, event_type, created = value.get("id"), value.get("type"), value.get("created")
    if not isinstance(event_id, str) or not event_id:
        raise WebhookRejected("event has no string id")
    if not isinstance(event_type, str) or not event_type:
        raise WebhookRejected("event has no string type")
    if isinstance(created, bool) or not isinstance(created, int):
        raise WebhookRejected("event has no integer created")
    return VerifiedEvent(event_id=event_id, event_type=event_type, created=created, payload=value)


class StripeSchemeVerifier:
    """A package's webhook verifier for Stripe-scheme deliveries: every secret, then the timestamp window."""

    def __init__(self, secrets: Sequence[str], *, tolerance: int = TOLERANCE_SECONDS) -> None:
        if isinstance(secrets, str):
            raise TypeError("secrets is a sequence of secrets, not one string")
        self._secrets = tuple(secret for secret in secrets if secret)
        self._tolerance = tolerance

    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        headers = {name.lower(): value for name, value in delivery.headers.items()}
        verify_signature(
            headers.get(SIGNATURE_HEADER),
            delivery.body,
            self._secrets,
            now=delivery.received_at,
            tolerance=self._tolerance,
        )
        return verified_event(delivery.body)
