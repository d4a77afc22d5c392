"""The period one PayPal billing cycle pays for: from its sale to one regular cycle of the plan later.

PayPal bills in advance, a cycle at a time, so a cycle's sale pays from the moment it was made until the next
billing time, `interval_count` times `interval_unit` (DAY, WEEK, MONTH, YEAR) later; months and years keep the day
of the month, clamped to the month's length. A v1 sale names no period, so this is how its invoice gets one
(what a prorated refund on cancel is measured against). Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

_DAY: Final = 86_400
_SECONDS: Final = {"DAY": _DAY, "WEEK": 7 * _DAY}
_MONTHS: Final = {"MONTH": 1, "YEAR": 12}


def regular_frequency(plan: Mapping[str, Any] | None) -> tuple[str, int] | None:
    """The plan's REGULAR cycle as (interval unit, count), None when it has none we can read."""
    for cycle in (plan or {}).get("billing_cycles") or ():
        if cycle.get("tenure_type") == "REGULAR":
            frequency = cycle.get("frequency") or {}
            unit = str(frequency.get("interval_unit") or "")
            if unit in _SECONDS or unit in _MONTHS:
                return unit, int(frequency.get("interval_count") or 1)
    return None


def cycle_end(start: int, unit: str, count: int) -> int:
    """`start` moved forward `count` intervals of `unit`."""
    if unit in _SECONDS:
        return start + count * _SECONDS[unit]
    moment = datetime.fromtimestamp(start, UTC)
    index = moment.month - 1 + count * _MONTHS[unit]
    year, month = moment.year + index // 12, index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return int(moment.replace(year=year, month=month, day=day).timestamp())
