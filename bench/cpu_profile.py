"""Run a Python script under cProfile timed by its thread's CPU clock, not the wall clock.

Run: python -m bench.cpu_profile OUT SCRIPT [ARGS…]   or   python -m bench.cpu_profile OUT -m MODULE [ARGS…]
(the benchmarks' `--profile FILE` starts servers so)
On a machine whose cores are all busy, a server's thread spends part of every second runnable but not
running; a wall-clock profile (cProfile's default timer, py-spy's samples) charges that wait to whatever
was on the stack when the scheduler took the core away, which is most often just after a socket write
that woke PostgreSQL. `time.thread_time` charges each function only the CPU its thread spent in it.
The profile is written to OUT when the script ends, Ctrl-C included, and read with `pstats`.
SIGUSR1 starts the profile again, leaving out what ran before (start-up, a benchmark's set-up): a
benchmark sends it before its measured rounds, and reads the calls a request from the profile's total.

Never here: a profile of other threads (cProfile profiles the thread it was enabled on: the event loop's).
"""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys
import time
from types import FrameType


def main() -> None:
    out, script, *arguments = sys.argv[1:]
    module = arguments.pop(0) if script == "-m" else None
    sys.argv = [module or script, *arguments]
    profiler = cProfile.Profile(time.thread_time)

    def start_again(signum: int, frame: FrameType | None) -> None:
        nonlocal profiler
        profiler.disable()
        profiler = cProfile.Profile(time.thread_time)
        profiler.enable()

    signal.signal(signal.SIGUSR1, start_again)
    profiler.enable()
    try:
        if module is None:
            runpy.run_path(script, run_name="__main__")
        else:
            runpy.run_module(module, run_name="__main__", alter_sys=True)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        profiler.disable()
        profiler.dump_stats(out)


if __name__ == "__main__":
    main()
