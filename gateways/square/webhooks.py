"""Verifying Square's event notifications, with the SDK's own `verify_signature`.

Square signs each delivery with the webhook subscription's signature key: `x-square-hmacsha256-signature` is
base64(HMAC-SHA256(key, notification URL + raw body)), compared in constant time. The URL is the one the
subscription was registered with, exactly (scheme, host, path): PayQL's public `/webhooks/square` unless
`PAYQL_SQUARE_NOTIFICATION_URL` says otherwise (behind a proxy that rewrites it). Several keys may be configured,
so a key can be replaced (Square rotates by issuing a new one) without refusing deliveries in flight.

Square's scheme carries no timestamp, and Square retries a delivery with the same body for up to 72 hours, so
there is no freshness window here: a replayed delivery is stored once by its `event_id` and re-read before use.
"""

from __future__ import annotations

from collections.abc import Sequence

from square.utils.webhooks_helper import verify_signature

from gateways.errors import WebhookRejected
from gateways.square.events import verified_event
from gateways.types import VerifiedEvent, WebhookDelivery
from gateways.webhook_json import webhook_object

SIGNATURE_HEADER = "x-square-hmacsha256-signature"
WEBHOOK_PATH = "/webhooks/square"


class SquareDeliveryVerifier:
    def __init__(self, signature_keys: Sequence[str], notification_url: str | None) -> None:
        if isinstance(signature_keys, str):
            raise TypeError("signature_keys is a sequence of keys, not one string")
        self._keys = tuple(key for key in signature_keys if key)
        self._url = notification_url

    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        signature = next((v for k, v in delivery.headers.items() if k.lower() == SIGNATURE_HEADER), None)
        if not signature:
            raise WebhookRejected(f"missing {SIGNATURE_HEADER}")
        if not self._keys or not self._url:
            raise WebhookRejected("no Square signature key or notification URL is configured")
        try:
            body = delivery.body.decode("utf-8")
        except UnicodeDecodeError:
            raise WebhookRejected("body is not UTF-8") from None
        url = self._url
        if not any(
            verify_signature(request_body=body, signature_header=signature, signature_key=key, notification_url=url)
            for key in self._keys
        ):
            raise WebhookRejected("signature does not verify with any configured signature key")
        try:
            return verified_event(webhook_object(delivery.body))
        except ValueError as exc:
            raise WebhookRejected(f"not a Square event: {exc}") from None
