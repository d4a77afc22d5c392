"""Fault switches that make the sandbox processor misbehave on purpose, for tests.

`unavailable` fails calls before they do anything (like a 5xx); `timeout` lets them commit and then
loses the answer (like a network timeout after the processor acted). The web layer exposes these only
outside production; nothing here may decide on its own to fail a call that was not armed.
"""

from __future__ import annotations

from enum import StrEnum


class FaultMode(StrEnum):
    UNAVAILABLE = "unavailable"
    TIMEOUT = "timeout"


class FaultSwitch:
    """One armed mode at a time and how many more calls it hits; arming again replaces it."""

    def __init__(self) -> None:
        self._mode: FaultMode | None = None
        self._remaining = 0

    def arm(self, mode: str, count: int) -> None:
        try:
            parsed = FaultMode(mode)
        except ValueError:
            raise ValueError(f"unknown fault mode {mode!r}; use 'unavailable' or 'timeout'") from None
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
