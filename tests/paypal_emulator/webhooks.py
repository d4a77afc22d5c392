"""Signed webhook deliveries, as PayPal sends them.

PayPal signs `transmission_id|transmission_time|webhook_id|crc32(raw body)` with SHA256withRSA and names the
X.509 certificate to check it with in PAYPAL-CERT-URL. The emulator makes an RSA key and a self-signed
certificate at start and serves the certificate at `/v1/notifications/certs/{cert_id}`.
"""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

AUTH_ALGO = "SHA256withRSA"


def signed_message(transmission_id: str, transmission_time: str, webhook_id: str, body: bytes) -> bytes:
    return f"{transmission_id}|{transmission_time}|{webhook_id}|{zlib.crc32(body)}".encode()


@dataclass(frozen=True)
class Delivery:
    headers: dict[str, str]
    body: bytes


class WebhookSigner:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.cert_id = f"CERT-360caa42-fca2a594-{uuid.uuid4().hex[:8]}"
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "messageverificationcerts.paypal.com")])
        start = datetime.now(UTC) - timedelta(days=1)
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + timedelta(days=365))
            .sign(self.key, hashes.SHA256())
        )

    def cert_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def sign(
        self,
        event: dict[str, Any],
        *,
        webhook_id: str,
        cert_url: str,
        transmission_time: datetime | None = None,
    ) -> Delivery:
        body = json.dumps(event, separators=(",", ":")).encode()
        transmission_id = str(uuid.uuid4())
        when = (transmission_time or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
        signature = self.key.sign(
            signed_message(transmission_id, when, webhook_id, body), padding.PKCS1v15(), hashes.SHA256()
        )
        headers = {
            "paypal-transmission-id": transmission_id,
            "paypal-transmission-time": when,
            "paypal-transmission-sig": base64.b64encode(signature).decode(),
            "paypal-cert-url": cert_url,
            "paypal-auth-algo": AUTH_ALGO,
            "content-type": "application/json",
        }
        return Delivery(headers=headers, body=body)

    def verify(self, transmission_id: str, transmission_time: str, webhook_id: str, body: bytes, sig: str) -> bool:
        try:
            self.key.public_key().verify(
                base64.b64decode(sig),
                signed_message(transmission_id, transmission_time, webhook_id, body),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (InvalidSignature, ValueError):
            return False
        return True


_SUMMARIES = {
    "CHECKOUT.ORDER.APPROVED": "An order has been approved by buyer",
    "CHECKOUT.ORDER.COMPLETED": "Checkout Order Completed",
    "PAYMENT.CAPTURE.COMPLETED": "Payment completed",
    "PAYMENT.CAPTURE.REFUNDED": "A payment was refunded",
    "PAYMENT.AUTHORIZATION.CREATED": "A payment authorization was created",
    "PAYMENT.AUTHORIZATION.VOIDED": "A payment authorization was voided",
}


def event_body(event_type: str, resource_type: str, resource: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"WH-{uuid.uuid4().hex[:17].upper()}-{uuid.uuid4().hex[:17].upper()}",
        "event_version": "1.0",
        "create_time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "resource_type": resource_type,
        "resource_version": "2.0",
        "event_type": event_type,
        "summary": _SUMMARIES.get(event_type, event_type),
        "resource": resource,
        "links": [],
    }
