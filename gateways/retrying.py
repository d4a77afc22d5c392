"""Retrying one gateway call with exponential backoff and jitter, within the request's deadline.

Only what the caller says is retryable is retried (an unreachable gateway, an unknown outcome), and the
caller's call sends the same idempotency key every time, so a retry can never charge, capture or refund
twice: the gateway answers a repeated key with the first result. A decline or a refused request is never
retried. Inside a request's deadline (`gateways.deadline`) no attempt starts, and no wait begins, that
would end past it; the call in flight at the deadline is cut short by `gateways.call_guard`. The last
error is raised as it was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, stop_before_delay, wait_random_exponential
from tenacity.stop import stop_base

from gateways import deadline
from gateways.errors import GatewayUnavailable

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    base_seconds: float = 0.2
    max_seconds: float = 2.0


def unanswered(error: BaseException) -> bool:
    """Retryable on the same gateway with the same key: it was unreachable, or its outcome is unknown."""
    return isinstance(error, GatewayUnavailable)


async def with_retries(
    policy: RetryPolicy, call: Callable[[], Awaitable[_T]], *, retryable: Callable[[BaseException], bool]
) -> _T:
    stop: stop_base = stop_after_attempt(policy.attempts)
    left = deadline.remaining()
    if left is not None:
        stop = stop | stop_before_delay(left)
    retrying = AsyncRetrying(
        stop=stop,
        wait=wait_random_exponential(multiplier=policy.base_seconds, max=policy.max_seconds),
        retry=retry_if_exception(retryable),
        reraise=True,
    )

    # A coroutine function, so that tenacity awaits each attempt (a plain callable's coroutine it would not).
    async def attempt() -> _T:
        return await call()

    return await retrying(attempt)
