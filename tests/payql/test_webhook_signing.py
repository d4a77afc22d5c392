"""The signing scheme of outgoing webhooks: a header PayQL signs verifies with each live secret,
a changed body, an unknown secret, a stale timestamp or a malformed header does not, and the HMAC is
exactly the documented one (computed here from the scheme, not from the module)."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from payql.webhook_signing import (
    SignatureVerificationError,
    compute_signature,
    generate_secret,
    signature_header,
    verify,
)

BODY = b'{"id":"evt_1","type":"order.paid"}'
NOW = 1_760_000_000


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    secret = "whsec_documented"
    expected = hmac.new(secret.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert compute_signature(secret, NOW, BODY) == expected
    assert signature_header([secret], NOW, BODY) == f"t={NOW},v1={expected}"


def test_a_header_verifies_with_its_secret() -> None:
    secret = generate_secret()
    assert secret.startswith("whsec_")
    assert verify(signature_header([secret], NOW, BODY), BODY, [secret], now=NOW + 10) == NOW


def test_during_a_roll_either_secret_verifies() -> None:
    new, old = generate_secret(), generate_secret()
    header = signature_header([new, old], NOW, BODY)
    assert header.count("v1=") == 2
    assert verify(header, BODY, [old], now=NOW) == NOW
    assert verify(header, BODY, [new], now=NOW) == NOW
    with pytest.raises(SignatureVerificationError, match="no signature matches"):
        verify(header, BODY, [generate_secret()], now=NOW)


@pytest.mark.parametrize(
    ("header", "body", "now", "message"),
    [
        (None, BODY, NOW, "no PayQL-Signature header"),
        ("v1=abc", BODY, NOW, "no timestamp"),
        (f"t={NOW}", BODY, NOW, "no v1 signature"),
        ("t=soon,v1=abc", BODY, NOW, "not an integer"),
        ("SIGNED", BODY, NOW + 301, "outside the tolerance"),
        ("SIGNED", BODY + b" ", NOW, "no signature matches"),
    ],
)
def test_a_bad_request_is_refused(header: str | None, body: bytes, now: int, message: str) -> None:
    secret = "whsec_x"
    if header == "SIGNED":
        header = signature_header([secret], NOW, BODY)
    with pytest.raises(SignatureVerificationError, match=message):
        verify(header, body, [secret], now=now)
