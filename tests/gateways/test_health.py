"""The circuit breaker: opens on consecutive failures, on the failure rate over a window and on slow
calls; after the open period one half-open probe decides whether it closes or opens again."""

from __future__ import annotations

from gateways.health import BreakerPolicy, CircuitState, LocalHealthBoard


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def board(clock: Clock) -> LocalHealthBoard:
    policy = BreakerPolicy(
        consecutive_failures=3, failure_rate=0.5, window=10, minimum_calls=6, open_seconds=30, slow_call_seconds=5
    )
    return LocalHealthBoard(policy, clock)


def test_consecutive_failures_open_the_circuit() -> None:
    health = board(Clock())
    for _ in range(2):
        health.record("g", ok=False, seconds=0.1)
    assert health.allows("g")
    health.record("g", ok=False, seconds=0.1)
    assert health.view("g").state is CircuitState.OPEN
    assert not health.allows("g")
    assert health.view("other").state is CircuitState.CLOSED


def test_the_failure_rate_over_the_window_opens_the_circuit() -> None:
    health = board(Clock())
    for ok in (True, False, True, False, True):
        health.record("g", ok=ok, seconds=0.1)
    assert health.view("g").state is CircuitState.CLOSED  # under the minimum number of calls
    health.record("g", ok=False, seconds=0.1)
    assert health.view("g").state is CircuitState.OPEN
    assert health.view("g").failure_rate == 0.5


def test_slow_calls_count_as_failures() -> None:
    health = board(Clock())
    for _ in range(3):
        health.record("g", ok=True, seconds=6)
    assert health.view("g").state is CircuitState.OPEN


def test_a_half_open_probe_closes_the_circuit_after_recovery() -> None:
    clock = Clock()
    health = board(clock)
    for _ in range(3):
        health.record("g", ok=False, seconds=0.1)
    clock.now += 29
    assert not health.available("g")
    assert not health.allows("g")
    clock.now += 1
    assert health.available("g") and health.available("g")  # asking takes nothing
    assert health.allows("g")  # the probe
    assert not health.available("g")
    assert health.view("g").state is CircuitState.HALF_OPEN
    assert not health.allows("g")  # one probe at a time
    clock.now += 30
    assert health.allows("g")  # a probe that never reported back is given up
    health.record("g", ok=True, seconds=0.1)
    assert health.view("g").state is CircuitState.CLOSED
    assert health.view("g").since == clock.now
    assert health.allows("g")


def test_a_failed_probe_opens_the_circuit_again() -> None:
    clock = Clock()
    health = board(clock)
    for _ in range(3):
        health.record("g", ok=False, seconds=0.1)
    clock.now += 30
    assert health.allows("g")
    health.record("g", ok=False, seconds=0.1)
    assert health.view("g").state is CircuitState.OPEN
    assert not health.allows("g")
