"""The HTTP plumbing for Stripe: one `stripe.StripeClient` per gateway, async calls only.

The API version is pinned here, once, so an SDK upgrade never silently changes the wire format. The SDK
never retries on its own (`max_network_retries=0`): a lost answer surfaces as `GatewayUnavailable` and the
caller retries with the *same* idempotency key, or reads the payment back. The base URL is configurable so
tests can point the client at localstripe or at a local error server.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import httpx
import stripe

# The Stripe API version every request is sent with (the one the installed SDK 16.x is generated for).
API_VERSION: Final = "2026-10-28.endive"
DEFAULT_BASE_URL: Final = "https://api.stripe.com"
CONNECT_TIMEOUT_SECONDS: Final = 5.0


class _HTTPXClient(stripe.HTTPXClient):
    """The SDK's httpx client, sending form bodies as `content=` rather than httpx's deprecated `data=<str>`."""

    def _get_request_args_kwargs(  # type: ignore[no-untyped-def]  # the SDK's own method is untyped
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any
    ):
        args, kwargs = super()._get_request_args_kwargs(method, url, headers, post_data)
        if isinstance(post_data, str | bytes):
            del kwargs["data"]
            kwargs["content"] = post_data
        return args, kwargs


class StripeApi:
    """A `StripeClient` on an async httpx transport with our timeouts, pinned API version and no retries.

    Use `client.v1.<resource>.<verb>_async(...)` only; `aclose()` closes the connection pool.
    """

    def __init__(self, secret_key: str, *, base_url: str | None = None, timeout: float = 30) -> None:
        if not secret_key:
            raise ValueError("a Stripe secret key is required")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._http = _HTTPXClient(timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_SECONDS)))
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.client = stripe.StripeClient(
            secret_key,
            stripe_version=API_VERSION,
            base_addresses={"api": self.base_url},
            http_client=self._http,
            max_network_retries=0,
        )

    async def aclose(self) -> None:
        await self._http.close_async()  # type: ignore[no-untyped-call]  # untyped in the SDK
