"""The app's side of the sandbox's locks: staff means a token the app's TokenVerifier accepts with
the admin role, the 3-D Secure form key comes from the installation's sandbox webhook secret, and
tokenization is rate limited per client address with the `limits` library.

Nothing here runs in production: the app mounts the sandbox only in development.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable

from limits import parse
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import MovingWindowRateLimiter

from gateways.sandbox.route_guard import SandboxGuard
from payql.auth import TokenVerifier
from payql.settings import Settings


class ClientRateLimiter:
    """A moving-window limit per client address, in memory (the sandbox lives in one process's state)."""

    def __init__(self, limit: str, namespace: str) -> None:
        self._limit = parse(limit)
        self._namespace = namespace
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    async def retry_after(self, client: str) -> int | None:
        """Count one request; None when it is allowed, else the whole seconds until one will be."""
        if await self._limiter.hit(self._limit, self._namespace, client):
            return None
        stats = await self._limiter.get_window_stats(self._limit, self._namespace, client)
        return max(1, math.ceil(stats.reset_time - time.time()))


def sandbox_guard(settings: Settings, tokens: Callable[[], TokenVerifier]) -> SandboxGuard:
    """`tokens` is looked up per request: the verifier is built with the services, after the routes."""

    def is_staff(authorization: str | None) -> bool:
        principal = tokens().principal_from_header(authorization)
        return principal is not None and principal.is_admin

    # A key of its own, derived so that every process of the installation signs the same form tokens.
    secret = settings.sandbox_webhook_secrets[0].encode()
    form_key = hmac.new(secret, b"payql sandbox 3-D Secure form", hashlib.sha256).digest()
    limiter = ClientRateLimiter(settings.sandbox_tokenize_rate_limit, "sandbox-tokens")
    return SandboxGuard(is_staff=is_staff, form_key=form_key, admit_tokenization=limiter.retry_after)
