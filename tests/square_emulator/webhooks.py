"""Square's event notifications: the event envelope (`PaymentUpdatedEvent` and friends in api.json) and the
signature Square sends in `x-square-hmacsha256-signature`: base64(HMAC-SHA256(signature key, notification URL +
raw body)), the URL being the one the webhook subscription was registered with."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from typing import Any

SIGNATURE_HEADER = "x-square-hmacsha256-signature"


def signature(key: str, notification_url: str, body: bytes) -> str:
    digest = hmac.new(key.encode(), notification_url.encode() + body, hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


@dataclass(frozen=True)
class Delivery:
    event: dict[str, Any]
    body: bytes
    headers: dict[str, str]


def event_body(
    event_type: str, merchant_id: str, created_at: str, data_type: str, object_id: str, wrapped: dict[str, Any]
) -> dict[str, Any]:
    """One event; `wrapped` is the `data.object` (e.g. `{"payment": {...}}`, or `{"object": {...}}` for disputes)."""
    return {
        "merchant_id": merchant_id,
        "type": event_type,
        "event_id": str(uuid.uuid4()),
        "created_at": created_at,
        "data": {"type": data_type, "id": object_id, "object": wrapped},
    }


def signed(event: dict[str, Any], *, key: str, notification_url: str) -> Delivery:
    body = json.dumps(event, separators=(",", ":")).encode()
    headers = {"content-type": "application/json", SIGNATURE_HEADER: signature(key, notification_url, body)}
    return Delivery(event, body, headers)
