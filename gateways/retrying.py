"""Retrying one gateway call with exponential backoff and jitter, within a deadline.

Only what the caller says is retryable is retried (an unreachable gateway, an unknown outcome), and the
caller's call sends the same idempotency key every time, so a retry can never charge twice: the gateway
answers a repeated key with the first result. A decline or a refused request is never retried. No
attempt starts after the deadline; the last error is raised as it was.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, stop_before_delay, wait_random_exponential

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 3
    base_seconds: float = 0.2
    max_seconds: float = 2.0
    deadline_seconds: float = 10.0


async def with_retries(
    policy: RetryPolicy, call: Callable[[], Awaitable[_T]], *, retryable: Callable[[BaseException], bool]
) -> _T:
    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts) | stop_before_delay(policy.deadline_seconds),
        wait=wait_random_exponential(multiplier=policy.base_seconds, max=policy.max_seconds),
        retry=retry_if_exception(retryable),
        reraise=True,
    )

    # A coroutine function, so that tenacity awaits each attempt (a plain callable's coroutine it would not).
    async def attempt() -> _T:
        return await call()

    return await retrying(attempt)
