"""Razorpay's two HMAC-SHA256 signatures, both hex, both compared in constant time:

- what Checkout hands the SPA after a payment, `razorpay_signature` = HMAC(key secret, `order_id|payment_id`);
- a webhook delivery's `X-Razorpay-Signature` = HMAC(webhook secret, raw body).

The SDK's `utility.verify_payment_signature` does compare with `hmac.compare_digest`, but on `str` values, which
raises TypeError for a non-ASCII forgery and needs a `Client`; these compare bytes and never raise.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable


def hex_hmac(secret: str, message: bytes) -> str:
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def payment_signature_valid(key_secret: str, order_id: str, payment_id: str, signature: str) -> bool:
    expected = hex_hmac(key_secret, f"{order_id}|{payment_id}".encode())
    return hmac.compare_digest(expected.encode(), signature.encode())


def body_signed_by_any(secrets: Iterable[str], body: bytes, signature: str) -> bool:
    """True when one of the secrets (several while rotating) signed `body`; every secret is tried."""
    given = signature.strip().encode()
    matched = False
    for secret in secrets:
        matched |= hmac.compare_digest(hex_hmac(secret, body).encode(), given)
    return matched
