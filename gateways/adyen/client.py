"""The HTTP plumbing: Adyen's Python SDK (`Adyen` 16.x: Checkout API v72, Disputes API v30), pointed at any base
URL, run off the event loop.

- The SDK is synchronous: each call is a `requests.request` made in a worker thread, at most `max_concurrency`
  at a time (`anyio.to_thread` with a capacity limiter), never on the event loop.
- The SDK's services hold their base URL in `baseUrl` ("https://checkout-test.adyen.com/v72",
  "https://ca-test.adyen.com/ca/services/DisputeService/v30"); `api_base` replaces their host (the live platform
  is the SDK's own `platform="live"`: the account's URL prefix for Checkout, ca-live for the Disputes API).
- Every call sends an `Idempotency-Key` header (the SDK's `idempotency_key` argument): Adyen keeps keys at
  least 7 days per merchant account, so a retry after a lost answer gets the first answer, not a second effect.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from Adyen.client import AdyenClient
from Adyen.services.checkout import AdyenCheckoutApi
from Adyen.services.disputes import AdyenDisputesApi

_T = TypeVar("_T")

API_VERSION = "v72"
DISPUTES_PATH = "/ca/services/DisputeService/v30"


class AdyenCalls:
    """A thin owner of the SDK client: `call(fn)` runs `fn(checkout)`, `call_disputes(fn)` runs
    `fn(disputes_api)`, in one bounded worker pool."""

    def __init__(
        self,
        api_key: str,
        *,
        api_base: str | None = None,
        live: bool = False,
        live_endpoint_prefix: str | None = None,
        timeout: int = 30,
        max_concurrency: int = 8,
    ) -> None:
        client = AdyenClient(
            xapikey=api_key,
            platform="live" if live else "test",
            live_endpoint_prefix=live_endpoint_prefix,
            http_timeout=timeout,
            http_force="requests",
            application_name="PayQL",
        )
        self.checkout: Any = AdyenCheckoutApi(client=client)
        self.disputes: Any = AdyenDisputesApi(client=client).disputes_api
        if api_base:
            base = f"{api_base.rstrip('/')}/{API_VERSION}"
            self.checkout.payments_api.baseUrl = base
            self.checkout.modifications_api.baseUrl = base
            self.disputes.baseUrl = f"{api_base.rstrip('/')}{DISPUTES_PATH}"
        self._limiter = anyio.CapacityLimiter(max_concurrency)

    async def call(self, fn: Callable[[Any], _T]) -> _T:
        return await self._run(functools.partial(fn, self.checkout))

    async def call_disputes(self, fn: Callable[[Any], _T]) -> _T:
        return await self._run(functools.partial(fn, self.disputes))

    async def _run(self, fn: Callable[[], _T]) -> _T:
        return await anyio.to_thread.run_sync(fn, limiter=self._limiter, abandon_on_cancel=False)
