"""The HTTP plumbing: PayPal's server SDK (`paypal-server-sdk` 2.x) built for any base URL, run off the event loop.

- The SDK's `Environment` only knows sandbox and production, so `_Configuration` overrides `get_base_uri`.
- The OAuth2 client-credentials token is cached by the SDK. We hand it a token provider so that a failing token
  call raises (the SDK's own fetch swallows the error into a vague `AuthValidationException`), and so that a 401
  `invalid_token` on an API call — a token revoked or expired before the SDK's clock says so — can mark the
  cached token expired; the call is then retried once with a fresh token (safe: it carries the same
  PayPal-Request-Id).
- Every SDK call is synchronous (requests): it runs in a worker thread, at most `max_concurrency` at a time.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from paypalserversdk.configuration import Configuration, Environment, Server
from paypalserversdk.exceptions.api_exception import ApiException
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient

_T = TypeVar("_T")

SANDBOX_BASE_URL = "https://api-m.sandbox.paypal.com"
PRODUCTION_BASE_URL = "https://api-m.paypal.com"


class _Configuration(Configuration):  # type: ignore[misc]  # the SDK is untyped
    """The SDK configuration with one base URL for every server, instead of the fixed environment mapping."""

    def __init__(self, *, base_url: str, **kwargs: Any) -> None:
        self._payql_base_url = base_url.rstrip("/")
        super().__init__(**kwargs)

    def get_base_uri(self, server: Any = Server.DEFAULT) -> str:
        return self._payql_base_url


class PayPalClient:
    """A thin owner of the SDK client: `call(fn)` runs `fn(sdk)` in a worker thread, recovering stale tokens."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        *,
        base_url: str = SANDBOX_BASE_URL,
        timeout: float = 30,
        max_concurrency: int = 8,
        token_clock_skew: int = 60,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token: Any = None
        self._token_lock = threading.Lock()
        credentials = ClientCredentialsAuthCredentials(
            o_auth_client_id=client_id,
            o_auth_client_secret=client_secret,
            o_auth_token_provider=self._provide_token,
            o_auth_clock_skew=token_clock_skew,
        )
        config = _Configuration(
            base_url=self.base_url,
            timeout=timeout,
            max_retries=0,  # retries belong to the caller, with the same PayPal-Request-Id
            environment=Environment.SANDBOX,  # ignored: get_base_uri is overridden
            client_credentials_auth_credentials=credentials,
        )
        self.sdk: Any = PaypalServersdkClient(config=config)
        self._limiter = anyio.CapacityLimiter(max_concurrency)

    def _provide_token(self, last_token: Any, auth_manager: Any) -> Any:
        """Called by the SDK when it has no token or its cached one has expired: fetch, and let errors raise."""
        with self._token_lock:
            current = self._token
            if current is not None and current is not last_token and not auth_manager.is_token_expired(current):
                return current  # another thread refreshed it meanwhile
            self._token = auth_manager.fetch_token()
            return self._token

    def _forget_token(self) -> None:
        with self._token_lock:
            if self._token is not None:
                self._token.expiry = 0  # the SDK's next `is_valid` sees it expired and asks the provider

    def _call_sync(self, fn: Callable[[Any], _T]) -> _T:
        try:
            return fn(self.sdk)
        except ApiException as exc:
            if exc.response_code != 401 or not _is_invalid_token(exc):
                raise
        self._forget_token()
        return fn(self.sdk)

    async def call(self, fn: Callable[[Any], _T]) -> _T:
        return await anyio.to_thread.run_sync(
            functools.partial(self._call_sync, fn), limiter=self._limiter, abandon_on_cancel=False
        )

    def close(self) -> None:
        session = getattr(self.sdk.config.http_client, "session", None)
        if session is not None:
            session.close()


def _is_invalid_token(exc: Any) -> bool:
    text = getattr(exc.response, "text", "") or ""
    return "invalid_token" in text
