"""The HTTP plumbing: one `square.AsyncSquare` (the SDK's async client, over httpx) per gateway.

The Square-Version is pinned here, once, so an SDK upgrade never silently changes the wire format. The SDK's own
retries (it retries 408, 409, 429 and 5xx twice by default) are switched off on every call (`NO_RETRIES`): a lost
answer surfaces as `GatewayUnavailable` and the caller retries with the *same* idempotency key, or reads back.
"""

from __future__ import annotations

import hashlib
from typing import Final

import httpx
from square import AsyncSquare
from square.core.request_options import RequestOptions

# The Square-Version every request is sent with (the one squareup 46.0.0.20260916 is generated for).
SQUARE_VERSION: Final = "2026-09-16"
SANDBOX_BASE_URL: Final = "https://connect.squareupsandbox.com"
PRODUCTION_BASE_URL: Final = "https://connect.squareup.com"
CONNECT_TIMEOUT_SECONDS: Final = 5.0
NO_RETRIES: Final[RequestOptions] = {"max_retries": 0}
# Square refuses idempotency keys longer than 45 characters.
MAX_IDEMPOTENCY_KEY: Final = 45


def square_key(key: str) -> str:
    """Our idempotency key as Square takes it: itself when short enough, else a digest of it (same key, same
    digest, so retries stay idempotent; PayQL's payment keys are 52 characters)."""
    if len(key) <= MAX_IDEMPOTENCY_KEY:
        return key
    return "pq-" + hashlib.sha256(key.encode()).hexdigest()[:40]


class SquareApi:
    """An `AsyncSquare` on our own httpx client (timeouts), pinned Square-Version; `aclose()` closes the pool."""

    def __init__(self, access_token: str, *, base_url: str = SANDBOX_BASE_URL, timeout: float = 30) -> None:
        if not access_token:
            raise ValueError("a Square access token is required")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_SECONDS)))
        self.client = AsyncSquare(
            base_url=self.base_url, token=access_token, httpx_client=self._http, version=SQUARE_VERSION
        )

    async def aclose(self) -> None:
        await self._http.aclose()
