"""The HTTP plumbing: the official `razorpay` SDK (2.0.x) pointed at any base URL, run off the event loop.

- `razorpay.Client(base_url=...)` takes the API's base URL (tests point it at the emulator).
- The SDK is synchronous (requests): every call runs in a worker thread, at most `max_concurrency` at a time.
- The SDK passes no timeout and keeps only the description of an error answer (`BadRequestError(description)`),
  dropping the HTTP status, `reason` and `field`. Its `session` argument takes ours: a `requests.Session` that
  sets the timeout and remembers, per thread, the last answer, so a failed call's status and error body reach
  `errors.translate` (attached to the exception as `payql_response` before it leaves the worker thread).
- One session (one connection pool) serves every worker thread, as the SDK itself shares one; what is per thread
  is only the remembered answer.
- The SDK's own retries stay off (`enable_retry` is never called): a retry belongs to the caller, who reads back
  first, because Razorpay has no idempotency key.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
import razorpay
import requests

_T = TypeVar("_T")

BASE_URL = "https://api.razorpay.com"


class _RecordingSession(requests.Session):
    """A session with a default timeout that remembers the last answer of each thread."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self._timeout = timeout
        self._last = threading.local()

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        self._last.response = None
        response = super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]
        self._last.response = response
        return response

    def last_response(self) -> requests.Response | None:
        return getattr(self._last, "response", None)


class RazorpayClient:
    """A thin owner of the SDK client: `call(fn)` runs `fn(sdk)` in a worker thread."""

    def __init__(
        self, key_id: str, key_secret: str, *, base_url: str = BASE_URL, timeout: float = 30, max_concurrency: int = 8
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._session = _RecordingSession(timeout)
        self.sdk: Any = razorpay.Client(session=self._session, auth=(key_id, key_secret), base_url=self.base_url)
        self._limiter = anyio.CapacityLimiter(max_concurrency)

    def _call_sync(self, fn: Callable[[Any], _T]) -> _T:
        try:
            return fn(self.sdk)
        except Exception as exc:
            # Read in this thread: the answer that made the SDK raise (None when no answer came).
            exc.payql_response = self._session.last_response()  # type: ignore[attr-defined]
            raise

    async def call(self, fn: Callable[[Any], _T]) -> _T:
        return await anyio.to_thread.run_sync(
            functools.partial(self._call_sync, fn), limiter=self._limiter, abandon_on_cancel=False
        )

    def close(self) -> None:
        self._session.close()
