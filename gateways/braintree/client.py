"""The HTTP plumbing: the official `braintree` SDK (4.48) configured for any gateway host, run off the event loop.

- The SDK's `Environment` names the host and port (https only on 443); production and sandbox are its own, and
  `api_base` ("http://127.0.0.1:8123") builds one for an emulator, the way the SDK's Development environment does.
- `wrap_http_exceptions` makes the SDK raise its own connection/timeout errors instead of requests' ones, which
  `errors.translate` maps.
- Every SDK call is synchronous (requests): it runs in a worker thread, at most `max_concurrency` at a time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import anyio
import anyio.to_thread

from gateways.braintree.errors import translate
from gateways.braintree.sdk import braintree
from gateways.errors import GatewayError

_T = TypeVar("_T")


def environment(*, live: bool, api_base: str | None) -> Any:
    if api_base:
        parts = urlsplit(api_base)
        secure = parts.scheme == "https"
        port = str(parts.port or (443 if secure else 80))
        if secure and port != "443":
            raise ValueError("the SDK speaks https on port 443 only")
        ssl_certificate = braintree.Environment.Sandbox.ssl_certificate if secure else None
        return braintree.Environment("custom", parts.hostname or "", port, "", secure, ssl_certificate)
    return braintree.Environment.Production if live else braintree.Environment.Sandbox


class BraintreeClient:
    """Owns one SDK gateway; `call(fn)` runs `fn(sdk)` in a worker thread with failures translated."""

    def __init__(
        self,
        merchant_id: str,
        public_key: str,
        private_key: str,
        *,
        live: bool = False,
        api_base: str | None = None,
        timeout: float = 30,
        max_concurrency: int = 8,
    ) -> None:
        self.config = braintree.Configuration(
            environment(live=live, api_base=api_base),
            merchant_id,
            public_key,
            private_key,
            timeout=timeout,
            wrap_http_exceptions=True,
        )
        self.sdk: Any = braintree.BraintreeGateway(self.config)
        self._limiter = anyio.CapacityLimiter(max_concurrency)

    async def call(self, fn: Callable[[Any], _T], *, reference: str | None = None) -> _T:
        try:
            return await anyio.to_thread.run_sync(
                functools.partial(fn, self.sdk), limiter=self._limiter, abandon_on_cancel=False
            )
        except GatewayError:
            raise
        except Exception as exc:  # the SDK raises many types; all are translated
            raise translate(exc, reference=reference) from exc

    def close(self) -> None:
        self.config.close()
