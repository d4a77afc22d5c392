"""The periodic jobs' intervals as `payql worker` cron entries, so the worker and the in-process
timers run the same schedule from the same settings.

A cron expression can only say "every N" for an N that divides its unit (seconds or minutes into
60, hours into 24). An interval that does not is rounded down to the nearest one that does, so a
job never runs less often than configured. Nothing here reads settings; the caller passes the
intervals in.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

logger = logging.getLogger(__name__)

_SECOND_STEPS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)
_MINUTE_STEPS = (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30)
_HOUR_STEPS = (1, 2, 3, 4, 6, 8, 12)
DAY = 24 * 3600


def cron_for_interval(seconds: float) -> str | None:
    """A cron expression (saq's: a 6th field counts seconds) that fires at least every `seconds`;
    None when `seconds` is 0 (the job is off)."""
    if seconds <= 0:
        return None
    if seconds < 60:
        step = max(s for s in _SECOND_STEPS if s <= seconds) if seconds >= 1 else 1
        return f"* * * * * */{step}"
    if seconds < 3600:
        step = max(m for m in _MINUTE_STEPS if m * 60 <= seconds)
        return f"*/{step} * * * *"
    if seconds < DAY:
        step = max(h for h in _HOUR_STEPS if h * 3600 <= seconds)
        return f"0 */{step} * * *"
    return "0 0 * * *"


def interval_of(expression: str) -> float:
    """The period of an expression made by `cron_for_interval` (for the rounding warning)."""
    fields = expression.split()
    if len(fields) == 6:
        return float(fields[5].removeprefix("*/"))
    if fields[0].startswith("*/"):
        return float(fields[0].removeprefix("*/")) * 60
    if fields[1].startswith("*/"):
        return float(fields[1].removeprefix("*/")) * 3600
    return float(DAY)


def cron_entries(intervals: Mapping[str, float]) -> list[tuple[str, str]]:
    """(job name, cron expression) for each job whose interval is not 0."""
    entries = []
    for job, seconds in intervals.items():
        expression = cron_for_interval(seconds)
        if expression is None:
            continue
        if interval_of(expression) != seconds:
            logger.warning(
                "job %s: an interval of %ss cannot be written in cron; the worker runs it every %ss",
                job,
                seconds,
                interval_of(expression),
            )
        entries.append((job, expression))
    return entries
