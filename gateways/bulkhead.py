"""Bulkheads: at most so many calls in flight to each gateway in this process.

A slow gateway holds its callers for as long as it takes to answer; without a bound it would end up
holding every worker, database connection and socket of the process, and the other gateways' payments
would wait behind it. With a bound, the call past it is refused at once with `GatewayBusy` (nothing was
sent), so the routing policy may fail the payment over to the next gateway instead of queueing.

The count is per process and per event loop thread: it is changed only between awaits, so it needs no
lock. Nothing here sleeps, waits for a slot or performs I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

from gateways.errors import GatewayBusy


class Bulkhead:
    def __init__(self) -> None:
        self._in_flight: Counter[str] = Counter()

    @contextmanager
    def slot(self, gateway: str, limit: int) -> Iterator[None]:
        """Hold one of `gateway`'s `limit` slots (0: no bound) for the call made inside; refuse when all are
        taken."""
        if limit and self._in_flight[gateway] >= limit:
            raise GatewayBusy(
                "The payment service is busy; please try again.",
                detail=f"bulkhead full: {limit} calls to {gateway} already in flight in this process",
            )
        self._in_flight[gateway] += 1
        try:
            yield
        finally:
            self._in_flight[gateway] -= 1

    def in_flight(self, gateway: str) -> int:
        return self._in_flight[gateway]
