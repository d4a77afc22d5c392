"""Offline verification of PayPal webhook deliveries.

Why offline rather than `POST /v1/notifications/verify-webhook-signature`:
- no extra OAuth'd round trip per delivery, so verification keeps working while PayPal's API is slow, rate-limited
  or down (deliveries are then stored and retried, not lost to a verifier outage);
- the API re-serializes the event it is given, so a body that is not byte-identical after our JSON round trip
  fails there; offline we check the exact raw bytes the signature covers;
- the server SDK (2.x) has no notifications controller, so the API route would be hand-written HTTP anyway.

What is checked: PAYPAL-AUTH-ALGO is SHA256withRSA; PAYPAL-CERT-URL is https (unless explicitly allowed for tests)
on an allow-listed PayPal host, without credentials, redirects not followed; the certificate is inside its validity
period; the SHA256withRSA signature over `transmission_id|transmission_time|webhook_id|crc32(raw body)` verifies
for one of our webhook ids (several may be configured, so they can rotate); and PAYPAL-TRANSMISSION-TIME is within
`tolerance` seconds of reception. Certificates are cached by URL (PayPal rotates them by URL).
Not checked yet: the certificate chain up to a public CA (the allow-listed host, reached over TLS, is the anchor).
"""

from __future__ import annotations

import base64
import binascii
import zlib
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from gateways.errors import WebhookRejected

DEFAULT_CERT_HOSTS = ("api.paypal.com", "api-m.paypal.com", "api.sandbox.paypal.com", "api-m.sandbox.paypal.com")
AUTH_ALGO = "SHA256withRSA"
_CACHE_SIZE = 16


class WebhookVerifier:
    def __init__(
        self,
        webhook_ids: Sequence[str],
        *,
        cert_host_allowlist: Sequence[str] = DEFAULT_CERT_HOSTS,
        allow_http_cert_url: bool = False,
        tolerance: int = 300,
        timeout: float = 10,
    ) -> None:
        self._webhook_ids = tuple(webhook_ids)
        self._hosts = frozenset(host.lower() for host in cert_host_allowlist)
        self._schemes = frozenset({"https", "http"} if allow_http_cert_url else {"https"})
        self._tolerance = tolerance
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._certs: OrderedDict[str, x509.Certificate] = OrderedDict()

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
        cert = self._certs.get(cert_url)
        if cert is None:
            try:
                response = await self._http.get(cert_url)
            except httpx.HTTPError as exc:
                raise WebhookRejected(f"certificate download failed: {exc!r}") from None
            if response.status_code != 200:
                raise WebhookRejected(f"certificate download answered {response.status_code}")
            try:
                cert = x509.load_pem_x509_certificate(response.content)
            except ValueError:
                raise WebhookRejected("certificate is not PEM X.509") from None
            self._certs[cert_url] = cert
            while len(self._certs) > _CACHE_SIZE:
                self._certs.popitem(last=False)
        moment = datetime.fromtimestamp(now, UTC)
        if not cert.not_valid_before_utc <= moment <= cert.not_valid_after_utc:
            raise WebhookRejected("certificate is outside its validity period")
        return cert

    async def aclose(self) -> None:
        await self._http.aclose()
