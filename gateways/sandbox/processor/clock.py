"""`SandboxClock`: the sandbox's test clock, real time plus an offset that only ever grows.

Every timestamp the sandbox processor records comes from here, so tests (and later subscription
billing) can jump days ahead. It must never go backwards, not even when the wall clock is stepped back.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SandboxClock:
    def __init__(self, *, time_source: Callable[[], float] = time.time) -> None:
        self._time_source = time_source
        self._offset = 0
        self._last = 0

    @property
    def offset(self) -> int:
        """Seconds this clock runs ahead of real time through `advance` calls."""
        return self._offset

    def now(self) -> int:
        """Epoch seconds: real time plus the offset, and never less than a value returned before."""
        current = int(self._time_source()) + self._offset
        # The wall clock can be stepped back (NTP); timestamps already handed out must stay ordered.
        self._last = max(self._last, current)
        return self._last

    def advance(self, seconds: int) -> int:
        """Move the clock `seconds` ahead and return the new `now()`; negative values are refused."""
        if isinstance(seconds, bool) or not isinstance(seconds, int):
            raise TypeError("seconds must be an int")
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self._offset += seconds
        return self.now()
