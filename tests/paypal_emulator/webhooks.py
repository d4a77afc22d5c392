"""Signed webhook deliveries, as PayPal sends them.

PayPal signs `transmission_id|transmission_time|webhook_id|crc32(raw body)` with SHA256withRSA and names the
X.509 certificate to check it with in PAYPAL-CERT-URL; that URL serves the signing certificate followed by its
intermediate CA, chaining to a public root. The emulator makes a test root CA (`ca_pem`, which tests trust in place
of the system roots), an intermediate and an RSA signing key with its certificate at start, and serves leaf +
intermediate at `/v1/notifications/certs/{cert_id}`. `reissue` swaps the served certificate for one that must be
refused (self-signed, issued by another CA, expired, issued to another name) while keeping the signing key, so
only the certificate is wrong.
"""

from __future__ import annotations

import base64
import json
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

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


LEAF_NAME = "messageverificationcerts.paypal.com"
CertKind = Literal["chain", "self-signed", "other-ca", "expired", "other-name"]


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PayPal, Inc."),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _issue(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[x509.Certificate, rsa.RSAPrivateKey] | None,
    *,
    ca: bool,
    start: datetime | None = None,
    days: int = 365,
) -> x509.Certificate:
    """A certificate for `key`, signed by `issuer` (or by itself): a CA with keyCertSign, or a signing leaf."""
    start = start or datetime.now(UTC) - timedelta(days=1)
    issuer_name = issuer[0].subject if issuer else _name(subject)
    signing_key = issuer[1] if issuer else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.KeyUsage(
                digital_signature=not ca,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=ca,
                crl_sign=ca,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()), critical=False
        )
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(subject)]), critical=False)
    return builder.sign(signing_key, hashes.SHA256())


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class WebhookSigner:
    def __init__(self) -> None:
        self.key = _key()
        self.cert_id = f"CERT-360caa42-fca2a594-{uuid.uuid4().hex[:8]}"
        root_key, intermediate_key = _key(), _key()
        self.root = _issue("PayQL Test Root CA", root_key, None, ca=True, days=3650)
        self.intermediate = _issue("PayQL Test Intermediate CA", intermediate_key, (self.root, root_key), ca=True)
        self._intermediate_key = intermediate_key
        self.certificate = _issue(LEAF_NAME, self.key, (self.intermediate, intermediate_key), ca=False)
        self._served = [self.certificate, self.intermediate]

    def ca_pem(self) -> bytes:
        """The root to trust (production trusts the system roots instead)."""
        return self.root.public_bytes(serialization.Encoding.PEM)

    def cert_pem(self) -> bytes:
        """What PAYPAL-CERT-URL serves: the signing certificate, then its intermediate."""
        return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in self._served)

    def reissue(self, kind: CertKind) -> None:
        """Serve another certificate for the same signing key: the real chain, or one that must be refused."""
        if kind == "chain":
            self._served = [self.certificate, self.intermediate]
        elif kind == "self-signed":
            self._served = [_issue(LEAF_NAME, self.key, None, ca=False)]
        elif kind == "other-ca":
            other_key = _key()
            other = _issue("Someone Else's CA", other_key, None, ca=True)
            self._served = [_issue(LEAF_NAME, self.key, (other, other_key), ca=False), other]
        elif kind == "other-name":
            leaf = _issue("webhooks.example.com", self.key, (self.intermediate, self._intermediate_key), ca=False)
            self._served = [leaf, self.intermediate]
        else:
            start = datetime.now(UTC) - timedelta(days=400)
            leaf = _issue(LEAF_NAME, self.key, (self.intermediate, self._intermediate_key), ca=False, start=start)
            self._served = [leaf, self.intermediate]

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
    "BILLING.SUBSCRIPTION.CREATED": "Subscription created",
    "BILLING.SUBSCRIPTION.ACTIVATED": "Subscription activated",
    "BILLING.SUBSCRIPTION.UPDATED": "Subscription updated",
    "BILLING.SUBSCRIPTION.SUSPENDED": "Subscription suspended",
    "BILLING.SUBSCRIPTION.CANCELLED": "Subscription cancelled",
    "BILLING.SUBSCRIPTION.EXPIRED": "Subscription expired",
    "BILLING.SUBSCRIPTION.PAYMENT.FAILED": "Subscription payment failed",
    "PAYMENT.SALE.COMPLETED": "Payment completed",
    "PAYMENT.SALE.DENIED": "A payment was denied",
    "PAYMENT.SALE.REFUNDED": "A sale was refunded",
    "CUSTOMER.DISPUTE.CREATED": "A new dispute opened",
    "CUSTOMER.DISPUTE.UPDATED": "A dispute was updated",
    "CUSTOMER.DISPUTE.RESOLVED": "A dispute was resolved",
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
