"""Test clocks: a development gateway's per-customer clock that staff may move to fire what came due.

A gateway that has them (the sandbox) implements `ClockControlGateway` beside `BillingGateway` and declares
`Capabilities.test_clock`; the core asks this protocol, never the gateway's name. No gateway that moves
real money implements it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class ClockControlGateway(Protocol):
    name: str

    async def advance_customer_clock(self, customer_id: str, seconds: int) -> int:
        """Move one customer's test clock by `seconds`; returns its new now (epoch seconds)."""
        ...
