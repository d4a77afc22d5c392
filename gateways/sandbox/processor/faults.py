"""Fault switches that make the sandbox processor misbehave on purpose, for tests.

`unavailable` fails calls before they do anything (like a 5xx); `timeout` lets them commit and then
loses the answer (like a network timeout after the processor acted); `hold` lets them commit and then
keeps the answer back until released (a slow gateway: the caller's own timeout decides). The web layer
exposes these only outside production; nothing here may decide on its own to fail a call that was not armed.
"""

from __future__ import annotations

import asyncio
from enum import StrEnum


class FaultMode(StrEnum):
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"
    HOLD = "hold"


class HeldAnswers:
    """The answers the `hold` fault keeps back. A held call waits until `release()` (or its caller gives up);
    `wait_until_held()` returns once at least `count` calls have been held, so a test synchronizes on it."""

    def __init__(self) -> None:
        self.held = 0  # calls held since the processor started
        self._released = asyncio.Event()
        self._changed = asyncio.Event()

    async def hold(self) -> None:
        self.held += 1
        self._changed.set()
        await self._released.wait()

    async def wait_until_held(self, count: int = 1) -> None:
        while self.held < count:
            self._changed.clear()
            await self._changed.wait()

    def release(self) -> None:
        """Let every held call answer; calls held later wait again."""
        self._released.set()
        self._released = asyncio.Event()


class FaultSwitch:
    """One armed mode at a time and how many more calls it hits; arming again replaces it."""

    def __init__(self) -> None:
        self._mode: FaultMode | None = None
        self._remaining = 0

    def arm(self, mode: str, count: int) -> None:
        try:
            parsed = FaultMode(mode)
        except ValueError:
            raise ValueError(f"unknown fault mode {mode!r}; use 'unavailable', 'timeout' or 'hold'") from None
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError("count must be a positive int")
        self._mode, self._remaining = parsed, count

    def clear(self) -> None:
        self._mode, self._remaining = None, 0

    def take(self) -> FaultMode | None:
        """The fault that hits this call, if any, counting it as used."""
        if self._mode is None:
            return None
        mode = self._mode
        self._remaining -= 1
        if self._remaining == 0:
            self._mode = None
        return mode
