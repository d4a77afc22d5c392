"""Retries: only retryable errors, at most `attempts` calls, never a new attempt past the request's deadline."""

from __future__ import annotations

import pytest

from gateways.deadline import gateway_deadline
from gateways.errors import GatewayError, GatewayUnavailable, PaymentDeclined
from gateways.retrying import RetryPolicy, with_retries


class Flaky:
    def __init__(self, *failures: GatewayError) -> None:
        self.failures = list(failures)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return "answered"


def unavailable(error: BaseException) -> bool:
    return isinstance(error, GatewayUnavailable)


FAST = RetryPolicy(attempts=3, base_seconds=0, max_seconds=0)


async def test_retryable_errors_are_retried_until_an_answer() -> None:
    call = Flaky(GatewayUnavailable("down"), GatewayUnavailable("down"))
    assert await with_retries(FAST, lambda: call(), retryable=unavailable) == "answered"
    assert call.calls == 3


async def test_attempts_are_bounded_and_the_last_error_is_raised() -> None:
    call = Flaky(*(GatewayUnavailable(f"down {n}") for n in range(5)))
    with pytest.raises(GatewayUnavailable, match="down 2"):
        await with_retries(FAST, call, retryable=unavailable)
    assert call.calls == 3


async def test_a_decline_is_never_retried() -> None:
    call = Flaky(PaymentDeclined("no", decline_code="card_declined"))
    with pytest.raises(PaymentDeclined):
        await with_retries(FAST, call, retryable=unavailable)
    assert call.calls == 1


async def test_no_attempt_starts_past_the_deadline() -> None:
    call = Flaky(*(GatewayUnavailable("down") for _ in range(5)))
    with gateway_deadline(0), pytest.raises(GatewayUnavailable):
        await with_retries(RetryPolicy(attempts=5, base_seconds=0), call, retryable=unavailable)
    assert call.calls == 1
