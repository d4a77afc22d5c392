"""Gateway health: a circuit breaker per gateway (closed → open → half-open → closed), fed by every call's
outcome and latency.

A call is a failure when the gateway did not answer usefully (unreachable, timed out, 5xx) or took longer
than `slow_call_seconds`; a decline or a refused request is a success (the gateway is up and answered).
The circuit opens after `consecutive_failures` failures in a row, or when the failure rate over the last
`window` calls (at least `minimum_calls`) reaches `failure_rate`. After `open_seconds` one probe is let
through (half-open): its success closes the circuit, its failure opens it again.

Planning a route asks `available` (changes nothing); the call itself asks `allows`, which takes the
half-open probe. `HealthBoard` is the interface the core uses; `LocalHealthBoard` keeps the state in
this process (a board shared across instances through Redis would implement the same protocol).
Nothing here performs I/O, and the clock is passed in so tests move it by hand.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    consecutive_failures: int = 5
    failure_rate: float = 0.5
    window: int = 20
    minimum_calls: int = 10
    open_seconds: float = 30.0
    slow_call_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class CircuitView:
    state: CircuitState
    since: float
    failure_rate: float


class HealthBoard(Protocol):
    def available(self, gateway: str) -> bool:
        """Whether `allows` would let a call through now; changes nothing (for planning a route)."""
        ...

    def allows(self, gateway: str) -> bool:
        """Whether a call may go to `gateway` now; a half-open circuit lets one probe through, and this
        call takes it."""
        ...

    def record(self, gateway: str, *, ok: bool, seconds: float) -> None:
        """One finished call: did the gateway answer usefully, and how long it took."""
        ...

    def view(self, gateway: str) -> CircuitView: ...


@dataclass(slots=True)
class _Circuit:
    state: CircuitState
    since: float
    outcomes: deque[bool]
    consecutive: int = 0
    # When the half-open probe was let through (None: no probe out); a probe never reported back (its
    # caller chose another gateway, or crashed) is given up after `open_seconds`.
    probe_started: float | None = None
    # Opened because another instance said so (`force_open`), not by this process's own calls.
    forced: bool = False
    # Closed by a good probe since `take_recovered` last asked.
    recovered: bool = False


@dataclass(slots=True)
class LocalHealthBoard:
    """Every gateway's circuit in this process."""

    policy: BreakerPolicy = field(default_factory=BreakerPolicy)
    clock: Callable[[], float] = time.monotonic
    _circuits: dict[str, _Circuit] = field(default_factory=dict)

    def available(self, gateway: str) -> bool:
        circuit = self._circuit(gateway)
        now = self.clock()
        if circuit.state is CircuitState.OPEN:
            return now - circuit.since >= self.policy.open_seconds
        if circuit.state is CircuitState.HALF_OPEN:
            return circuit.probe_started is None or now - circuit.probe_started >= self.policy.open_seconds
        return True

    def allows(self, gateway: str) -> bool:
        circuit = self._circuit(gateway)
        if circuit.state is CircuitState.OPEN and self.clock() - circuit.since >= self.policy.open_seconds:
            self._move(circuit, CircuitState.HALF_OPEN)
        if circuit.state is CircuitState.CLOSED:
            return True
        now = self.clock()
        if circuit.state is CircuitState.HALF_OPEN and (
            circuit.probe_started is None or now - circuit.probe_started >= self.policy.open_seconds
        ):
            circuit.probe_started = now
            return True
        return False

    def record(self, gateway: str, *, ok: bool, seconds: float) -> None:
        circuit = self._circuit(gateway)
        healthy = ok and seconds < self.policy.slow_call_seconds
        circuit.outcomes.append(healthy)
        circuit.consecutive = 0 if healthy else circuit.consecutive + 1
        if circuit.state is CircuitState.HALF_OPEN:
            circuit.probe_started = None
            circuit.forced = False
            circuit.recovered = healthy
            self._move(circuit, CircuitState.CLOSED if healthy else CircuitState.OPEN)
        elif circuit.state is CircuitState.CLOSED and self._tripped(circuit):
            self._move(circuit, CircuitState.OPEN)

    def force_open(self, gateway: str) -> None:
        """Open a closed circuit because another instance found the gateway failing (shared health)."""
        circuit = self._circuit(gateway)
        if circuit.state is CircuitState.CLOSED:
            self._move(circuit, CircuitState.OPEN)
            circuit.forced = True

    def opened_here(self, gateway: str) -> bool:
        """Open from this process's own calls (what it may tell other instances)."""
        circuit = self._circuit(gateway)
        return circuit.state is CircuitState.OPEN and not circuit.forced

    def take_recovered(self, gateway: str) -> bool:
        """Whether a probe closed the circuit since the last time this was asked."""
        circuit = self._circuit(gateway)
        recovered, circuit.recovered = circuit.recovered, False
        return recovered

    def view(self, gateway: str) -> CircuitView:
        circuit = self._circuit(gateway)
        return CircuitView(circuit.state, circuit.since, _failure_rate(circuit.outcomes))

    def _tripped(self, circuit: _Circuit) -> bool:
        if circuit.consecutive >= self.policy.consecutive_failures:
            return True
        return (
            len(circuit.outcomes) >= self.policy.minimum_calls
            and _failure_rate(circuit.outcomes) >= self.policy.failure_rate
        )

    def _move(self, circuit: _Circuit, state: CircuitState) -> None:
        circuit.state = state
        circuit.since = self.clock()
        if state is CircuitState.CLOSED:
            # A fresh start: the failures that opened it say nothing about the recovered gateway.
            circuit.outcomes.clear()
            circuit.consecutive = 0

    def _circuit(self, gateway: str) -> _Circuit:
        circuit = self._circuits.get(gateway)
        if circuit is None:
            circuit = _Circuit(CircuitState.CLOSED, self.clock(), deque(maxlen=self.policy.window))
            self._circuits[gateway] = circuit
        return circuit


def _failure_rate(outcomes: deque[bool]) -> float:
    return 0.0 if not outcomes else outcomes.count(False) / len(outcomes)
