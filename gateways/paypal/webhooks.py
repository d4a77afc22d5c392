"""Offline verification of PayPal webhook deliveries.

Why offline rather than `POST /v1/notifications/verify-webhook-signature`:
- no extra OAuth'd round trip per delivery, so verification keeps working while PayPal's API is slow, rate-limited
  or down (deliveries are then stored and retried, not lost to a verifier outage);
- the API re-serializes the event it is given, so a body that is not byte-identical after our JSON round trip
  fails there; offline we check the exact raw bytes the signature covers;
- the server SDK (2.x) has no notifications controller, so the API route would be hand-written HTTP anyway.

What is checked: PAYPAL-AUTH-ALGO is SHA256withRSA; PAYPAL-CERT-URL is https (unless explicitly allowed for tests)
on an allow-listed PayPal host, without credentials, redirects not followed; the certificate it serves (followed by
its intermediates, as PayPal serves them) chains to a trusted root and every certificate of the chain is valid at
reception, and it is issued to a `*.paypal.com` name (`messageverificationcerts.paypal.com`); the SHA256withRSA
signature over `transmission_id|transmission_time|webhook_id|crc32(raw body)` verifies
for one of our webhook ids (several may be configured, so they can rotate); and PAYPAL-TRANSMISSION-TIME is within
`tolerance` seconds of reception. Certificates are cached by URL (PayPal rotates them by URL); the chain is checked
again on every delivery, so a certificate that expires while cached stops verifying.
Trusted roots are the system's (certifi's bundle, as httpx uses) unless `trusted_roots` names others (tests trust
the emulator's test CA that way). Revocation (CRL/OCSP) is not checked.
"""

from __future__ import annotations

import base64
import binascii
import re
import warnings
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import certifi
import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.utils import CryptographyDeprecationWarning
from cryptography.x509.oid import NameOID
from cryptography.x509.verification import ExtensionPolicy, PolicyBuilder, Store, VerificationError

from gateways.errors import WebhookRejected
from gateways.paypal.transformers import verified_event
from gateways.types import VerifiedEvent, WebhookDelivery

DEFAULT_CERT_HOSTS = ("api.paypal.com", "api-m.paypal.com", "api.sandbox.paypal.com", "api-m.sandbox.paypal.com")
AUTH_ALGO = "SHA256withRSA"
_CACHE_SIZE = 16
_SIGNER_DOMAIN = ".paypal.com"


_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


def load_roots(pem: bytes) -> list[x509.Certificate]:
    """Every certificate of a PEM bundle that cryptography accepts without complaint; the rest (e.g. old roots
    with a non-positive serial) cannot be the root of PayPal's current chain and are skipped."""
    roots = []
    for block in _PEM_BLOCK.findall(pem):
        with warnings.catch_warnings():
            warnings.simplefilter("error", CryptographyDeprecationWarning)
            try:
                roots.append(x509.load_pem_x509_certificate(block))
            except (ValueError, CryptographyDeprecationWarning):
                continue
    return roots


def system_roots_pem() -> bytes:
    with open(certifi.where(), "rb") as bundle:
        return bundle.read()


class WebhookVerifier:
    def __init__(
        self,
        webhook_ids: Sequence[str],
        *,
        cert_host_allowlist: Sequence[str] = DEFAULT_CERT_HOSTS,
        allow_http_cert_url: bool = False,
        tolerance: int = 300,
        timeout: float = 10,
        trusted_roots: bytes | None = None,
    ) -> None:
        """`trusted_roots`: PEM certificates to trust instead of the system roots (tests: the emulator's CA)."""
        self._webhook_ids = tuple(webhook_ids)
        self._hosts = frozenset(host.lower() for host in cert_host_allowlist)
        self._schemes = frozenset({"https", "http"} if allow_http_cert_url else {"https"})
        self._tolerance = tolerance
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._certs: OrderedDict[str, list[x509.Certificate]] = OrderedDict()
        self._trusted_roots = trusted_roots
        self._roots: Store | None = None  # loaded on first use

    async def verify(self, headers: dict[str, str], body: bytes, *, received_at: int) -> None:
        """Raise `WebhookRejected` unless the delivery is signed by PayPal for one of our webhooks, recently."""
        transmission_id = headers.get("paypal-transmission-id")
        transmission_time = headers.get("paypal-transmission-time")
        signature = headers.get("paypal-transmission-sig")
        cert_url = headers.get("paypal-cert-url")
        algo = headers.get("paypal-auth-algo")
        if not (transmission_id and transmission_time and signature and cert_url and algo):
            raise WebhookRejected("missing PAYPAL-TRANSMISSION-*/PAYPAL-CERT-URL/PAYPAL-AUTH-ALGO headers")
        if algo != AUTH_ALGO:
            raise WebhookRejected(f"unsupported PAYPAL-AUTH-ALGO {algo!r}")
        try:
            sent = datetime.fromisoformat(transmission_time.replace("Z", "+00:00"))
        except ValueError:
            raise WebhookRejected("PAYPAL-TRANSMISSION-TIME is not ISO 8601") from None
        if sent.tzinfo is None:
            raise WebhookRejected("PAYPAL-TRANSMISSION-TIME has no time zone")
        if abs(received_at - sent.timestamp()) > self._tolerance:
            raise WebhookRejected(f"transmission time {transmission_time} outside the {self._tolerance}s window")
        try:
            raw_signature = base64.b64decode(signature, validate=True)
        except (binascii.Error, ValueError):
            raise WebhookRejected("PAYPAL-TRANSMISSION-SIG is not base64") from None
        public_key = (await self._certificate(cert_url, received_at)).public_key()
        if not isinstance(public_key, rsa.RSAPublicKey):
            raise WebhookRejected("certificate key is not RSA")
        crc = zlib.crc32(body)
        for webhook_id in self._webhook_ids:
            message = f"{transmission_id}|{transmission_time}|{webhook_id}|{crc}".encode()
            try:
                public_key.verify(raw_signature, message, padding.PKCS1v15(), hashes.SHA256())
            except InvalidSignature:
                continue
            return
        raise WebhookRejected("signature does not verify for any configured webhook id")

    def _check_url(self, cert_url: str) -> None:
        parts = urlsplit(cert_url)
        host = (parts.hostname or "").lower()
        if parts.scheme not in self._schemes:
            raise WebhookRejected(f"certificate URL scheme {parts.scheme!r} refused")
        if parts.username or parts.password or host not in self._hosts:
            raise WebhookRejected(f"certificate URL host {host!r} is not an allow-listed PayPal host")

    async def _certificate(self, cert_url: str, now: int) -> x509.Certificate:
        self._check_url(cert_url)
        chain = self._certs.get(cert_url)
        if chain is None:
            try:
                response = await self._http.get(cert_url)
            except httpx.HTTPError as exc:
                raise WebhookRejected(f"certificate download failed: {exc!r}") from None
            if response.status_code != 200:
                raise WebhookRejected(f"certificate download answered {response.status_code}")
            try:
                chain = x509.load_pem_x509_certificates(response.content)
            except ValueError:
                raise WebhookRejected("certificate is not PEM X.509") from None
            self._certs[cert_url] = chain
            while len(self._certs) > _CACHE_SIZE:
                self._certs.popitem(last=False)
        leaf = chain[0]
        moment = datetime.fromtimestamp(now, UTC)
        if not leaf.not_valid_before_utc <= moment <= leaf.not_valid_after_utc:
            raise WebhookRejected("certificate is outside its validity period")
        self._check_chain(leaf, chain[1:], moment)
        return leaf

    def _check_chain(self, leaf: x509.Certificate, intermediates: list[x509.Certificate], moment: datetime) -> None:
        if self._roots is None:
            self._roots = Store(load_roots(self._trusted_roots or system_roots_pem()))
        verifier = (
            PolicyBuilder()
            .store(self._roots)
            .time(moment)
            # The CA side follows the Web PKI rules; the signing certificate is not a TLS server's, so no
            # server name or extended key usage is asked of it (its subject is checked below).
            .extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ExtensionPolicy.permit_all())
            .build_client_verifier()
        )
        try:
            verifier.verify(leaf, intermediates)
        except VerificationError as exc:
            raise WebhookRejected(f"certificate does not chain to a trusted root: {exc}") from None
        names = [str(attr.value) for attr in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        if not any(name.lower().endswith(_SIGNER_DOMAIN) for name in names):
            raise WebhookRejected(f"certificate subject {names!r} is not a PayPal name")

    async def aclose(self) -> None:
        await self._http.aclose()


class PayPalDeliveryVerifier:
    """PayPal's certificate-signed deliveries, checked offline against every configured webhook id."""

    def __init__(self, verifier: WebhookVerifier) -> None:
        self._verifier = verifier

    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        headers = {name.lower(): value for name, value in delivery.headers.items()}
        await self._verifier.verify(headers, delivery.body, received_at=delivery.received_at)
        return verified_event(delivery.body)

    async def aclose(self) -> None:
        await self._verifier.aclose()
