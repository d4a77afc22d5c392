"""The JSON object inside a webhook delivery whose signature checked out, read with bounded nesting.

Shared by every gateway's webhook parser. A signature proves who sent the body, not that it is sane:
a body nested thousands deep, not UTF-8, not an object or holding a NUL character (which PostgreSQL's
text columns refuse, and no gateway sends) is a WebhookRejected (the endpoint answers 400 and logs
the reason), never a crash.
"""

from __future__ import annotations

from typing import Any

from domain.bounded_json import MalformedJson, loads_bounded
from gateways.errors import WebhookRejected

# Real events (Stripe's, PayPal's, the sandbox's) nest about ten levels; leave room for growth.
MAX_WEBHOOK_DEPTH = 64
_NUL_ESCAPE = b"\\u0000"


def webhook_object(body: bytes) -> dict[str, Any]:
    try:
        value = loads_bounded(body, max_depth=MAX_WEBHOOK_DEPTH)
    except MalformedJson as exc:
        raise WebhookRejected(str(exc)) from None
    if not isinstance(value, dict):
        raise WebhookRejected("body is not a JSON object")
    # JSON can only write a NUL as the escape \u0000 (a raw control character is refused by the
    # decoder): a body without that text holds none, and its decoded value need not be walked.
    if _NUL_ESCAPE in body and _holds_nul(value):
        raise WebhookRejected("body holds a NUL character")
    return value


def _holds_nul(value: object) -> bool:
    # Recursion is safe here: the depth was bounded before decoding.
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False
