"""Signing PayQL's outgoing webhooks, and verifying them on the receiving side.

The scheme is Stripe's: the `PayQL-Signature` header reads `t=<unix seconds>,v1=<hex>[,v1=<hex>…]`,
each `v1` the HMAC-SHA256, keyed with one endpoint secret (its UTF-8 bytes, `whsec_` prefix
included), of `<t>.<raw request body>`. During a secret roll there is one `v1` per live secret, so a
receiver holding either the old or the new secret accepts the request.

Receivers may import this module on its own: it uses the standard library only. Verification must
run on the raw body bytes, before any JSON parsing, and refuses a timestamp outside the tolerance so a
captured request cannot be replayed later. Never here: comparing signatures with `==`, or accepting
a request none of whose signatures matches.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import Iterable, Sequence

SIGNATURE_HEADER = "PayQL-Signature"
EVENT_ID_HEADER = "PayQL-Event-Id"
EVENT_TYPE_HEADER = "PayQL-Event-Type"
SCHEME = "v1"
SECRET_PREFIX = "whsec_"
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureVerificationError(ValueError):
    """The header is missing or malformed, the timestamp is too old or new, or no signature matches."""


def generate_secret() -> str:
    """A new endpoint signing secret: 32 random bytes, URL-safe base64, with the `whsec_` prefix."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def compute_signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `<timestamp>.<body>` keyed with `secret`."""
    message = str(timestamp).encode("ascii") + b"." + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secrets_: Sequence[str], timestamp: int, body: bytes) -> str:
    """The header value: the timestamp and one `v1` per secret, newest secret first."""
    if not secrets_:
        raise ValueError("at least one secret signs a webhook")
    parts = [f"t={timestamp}", *(f"{SCHEME}={compute_signature(s, timestamp, body)}" for s in secrets_)]
    return ",".join(parts)


def parse_header(header: str) -> tuple[int, list[str]]:
    """The timestamp and the `v1` signatures of a header; unknown schemes are ignored."""
    timestamp: int | None = None
    signatures: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureVerificationError("the timestamp is not an integer") from None
        elif key == SCHEME:
            signatures.append(value)
    if timestamp is None:
        raise SignatureVerificationError("the header has no timestamp")
    if not signatures:
        raise SignatureVerificationError(f"the header has no {SCHEME} signature")
    return timestamp, signatures


def verify(
    header: str | None,
    body: bytes,
    secrets_: Iterable[str],
    *,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: float | None = None,
) -> int:
    """Check a request against the receiver's secrets (several while rolling); returns the timestamp.

    Raises `SignatureVerificationError` unless some `v1` matches some secret and the timestamp is
    within `tolerance_seconds` of now.
    """
    if not header:
        raise SignatureVerificationError(f"no {SIGNATURE_HEADER} header")
    timestamp, signatures = parse_header(header)
    current = time.time() if now is None else now
    if abs(current - timestamp) > tolerance_seconds:
        raise SignatureVerificationError("the timestamp is outside the tolerance")
    for secret in secrets_:
        expected = compute_signature(secret, timestamp, body)
        if any(hmac.compare_digest(expected, signature) for signature in signatures):
            return timestamp
    raise SignatureVerificationError("no signature matches")
