"""Billing-period arithmetic and proration for the sandbox billing engine: pure functions of integers.

Periods run from a billing-cycle anchor in whole intervals; months and years keep the anchor's day of the
month, clamped to the month's length (Jan 31, Feb 28, Mar 31), as Stripe does. Nothing here reads a clock
or the state: callers pass the moments in.
"""

from __future__ import annotations

import calendar
from datetime import UTC, datetime, timedelta
from typing import Final

DAY: Final = 86_400
_FIXED_SECONDS: Final = {"day": DAY, "week": 7 * DAY}
_MONTHS: Final = {"month": 1, "year": 12}
# A renewal fires at the period end; a period is never shorter than a day, so this bounds any jump.
MAX_PERIODS_PER_ADVANCE: Final = 10_000


def add_intervals(anchor: int, interval: str, count: int) -> int:
    """`anchor` moved forward `count` intervals (`interval` is day | week | month | year)."""
    if interval in _FIXED_SECONDS:
        return anchor + count * _FIXED_SECONDS[interval]
    months = count * _MONTHS[interval]
    start = datetime.fromtimestamp(anchor, UTC)
    month_index = start.month - 1 + months
    year, month = start.year + month_index // 12, month_index % 12 + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    moved = start.replace(year=year, month=month, day=day)
    return int(moved.timestamp())


def next_period_end(anchor: int, interval: str, interval_count: int, after: int) -> int:
    """The first period boundary from `anchor` (in steps of `interval_count` intervals) later than `after`."""
    if interval in _FIXED_SECONDS:
        step = interval_count * _FIXED_SECONDS[interval]
        periods = max(0, (after - anchor) // step) + 1
        return anchor + periods * step
    # Months vary in length: estimate from the average month, then step to the exact boundary.
    estimate = max(1, int((after - anchor) / (interval_count * _MONTHS[interval] * 30.44 * DAY)))
    periods = max(1, estimate - 1)
    while add_intervals(anchor, interval, periods * interval_count) <= after:
        periods += 1
    return add_intervals(anchor, interval, periods * interval_count)


def prorated(difference: int, remaining: int, length: int) -> int:
    """`difference` (minor units per period) x `remaining` / `length` seconds, rounded half away from zero.

    The magnitude is rounded half-up, so a downgrade's credit mirrors the matching upgrade's charge.
    """
    if length <= 0 or remaining <= 0:
        return 0
    remaining = min(remaining, length)
    magnitude = (abs(difference) * remaining * 2 + length) // (2 * length)
    return magnitude if difference >= 0 else -magnitude


def days(count: int) -> int:
    return int(timedelta(days=count).total_seconds())
