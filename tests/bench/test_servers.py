"""`bench.servers`' readings of the machine (the rest of it is exercised by every benchmark's run)."""

from __future__ import annotations

import os

import pytest

from bench.servers import machine_busy_seconds

# /proc/stat's first line: user nice system idle iowait irq softirq steal guest guest_nice.
STAT = "cpu  100 20 30 4000 500 6 7 8 90 10\ncpu0 50 10 15 2000 250 3 3 4 45 5\nintr 1 2 3\n"


def test_busy_time_is_every_tick_but_idle_and_io_wait() -> None:
    # Guest time is already counted in user and nice: adding it would count it twice.
    assert machine_busy_seconds(STAT) == pytest.approx((100 + 20 + 30 + 6 + 7 + 8) / os.sysconf("SC_CLK_TCK"))


def test_anything_but_a_proc_stat_text_is_refused() -> None:
    with pytest.raises(ValueError, match="not a /proc/stat text"):
        machine_busy_seconds("intr 1 2 3\n")


def test_this_machines_reading_grows() -> None:
    before = machine_busy_seconds()
    # Busy until the kernel's tick counter moves: a reading that stood still would measure nothing.
    while machine_busy_seconds() == before:
        sum(range(10_000))
    assert machine_busy_seconds() > before
