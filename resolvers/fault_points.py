"""Crash-test fault points: named places where a test can freeze the process to kill it there.

Inert unless `arm` was called at start-up, which only happens outside production when
PAYQL_FAULT_POINT is set. A reached point writes its marker file, then blocks the whole process
(the event loop included, so nothing else runs) until the test kills it with SIGKILL.
"""

from __future__ import annotations

import time
from pathlib import Path

_armed: dict[str, Path] = {}


def arm(point: str, marker: Path) -> None:
    _armed[point] = marker


def reach(point: str) -> None:
    marker = _armed.get(point)
    if marker is None:
        return
    marker.write_text(point)
    while True:
        time.sleep(3600)
