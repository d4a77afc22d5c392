"""Test switches that make the sandbox's webhook deliverer misbehave like a real processor's would.

Duplicates, late deliveries, lost webhooks and out-of-order delivery all happen with real processors;
these switches make each happen on demand. The web layer exposes them only outside production, and
nothing here acts unless a test (or a developer) flips a switch.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from gateways.sandbox.processor.objects import JsonDict

MAX_COPIES = 100
MAX_DELAY_SECONDS = 3600.0


class WebhookSwitches:
    """The deliverer reads `copies`, `delay_seconds` and `holding`, and calls `take_drop()` per event.

    `release` hands the held deliveries back to the deliverer through the `flush` callback it gave.
    """

    def __init__(self, flush: Callable[[bool], None]) -> None:
        self._flush = flush
        self.copies = 1
        self.delay_seconds = 0.0
        self.drops_left = 0
        self.holding = False

    def duplicate(self, n: int) -> None:
        """Send each delivery from now on `n` times (1 turns duplicates off)."""
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_COPIES:
            raise ValueError(f"duplicate must be an int from 1 to {MAX_COPIES}")
        self.copies = n

    def delay(self, seconds: float) -> None:
        """Hold each new event `seconds` before its first attempt (0 turns the delay off)."""
        if isinstance(seconds, bool) or not isinstance(seconds, int | float):
            raise ValueError("delay must be a number of seconds")
        if not math.isfinite(seconds) or not 0 <= seconds <= MAX_DELAY_SECONDS:
            raise ValueError(f"delay must be from 0 to {MAX_DELAY_SECONDS:g} seconds")
        self.delay_seconds = float(seconds)

    def drop(self, count: int) -> None:
        """Lose the next `count` events for good: never sent, yet marked acknowledged (0 cancels)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError("drop must be an int >= 0")
        self.drops_left = count

    def hold(self) -> None:
        """Buffer every delivery (new ones and retries) until `release`."""
        self.holding = True

    def release(self, *, reverse: bool = False) -> None:
        """Stop holding and send what was held: in the order held, or reversed (out of order)."""
        self.holding = False
        self._flush(reverse)

    def reset(self) -> None:
        """Every switch off; anything held is sent in its original order."""
        self.copies, self.delay_seconds, self.drops_left = 1, 0.0, 0
        if self.holding:
            self.release(reverse=False)

    def take_drop(self) -> bool:
        """Whether the event at hand is to be dropped, counting it."""
        if self.drops_left == 0:
            return False
        self.drops_left -= 1
        return True

    def snapshot(self) -> JsonDict:
        return {
            "duplicate": self.copies,
            "delay": self.delay_seconds,
            "drop": self.drops_left,
            "hold": self.holding,
        }
