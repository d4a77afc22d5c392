"""A fresh client IP per test: the whole loopback 127.0.0.0/8 reaches the test server, so a client
bound to its own 127.x.y.z address has per-IP counters no other test shares."""

from __future__ import annotations

import uuid

import httpx

# The test server's one trusted reverse proxy (PAYQL_TRUSTED_PROXIES); `fresh_address` never yields
# it, since its second byte is never 0.
PROXY_ADDRESS = "127.0.0.2"


def fresh_address() -> str:
    raw = uuid.uuid4().bytes
    return f"127.{raw[0] % 254 + 1}.{raw[1]}.{raw[2] % 254 + 1}"


def client_from(base_url: str, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base_url, transport=httpx.AsyncHTTPTransport(local_address=address), timeout=30)
