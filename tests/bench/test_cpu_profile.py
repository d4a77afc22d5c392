"""`bench.cpu_profile`: a script run under it gets its own arguments, and its profile, written when it
ends (interrupted included), charges a function the CPU its thread spent in it, not the time it waited."""

from __future__ import annotations

import os
import pstats
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import os, signal, sys, time

def waits():
    time.sleep(0.5)

def spins():
    return sum(i * i for i in range(20_000))

def after_the_restart():
    return None

waits()
if "--restart" in sys.argv:
    os.kill(os.getpid(), signal.SIGUSR1)
    after_the_restart()
spins()
print(" ".join(sys.argv))
if "--interrupt" in sys.argv:
    raise KeyboardInterrupt
"""


def profiled(tmp_path: Path, *arguments: str, as_module: bool = False) -> tuple[str, dict[str, float]]:
    script, out = tmp_path / "script.py", tmp_path / "script.prof"
    script.write_text(SCRIPT)
    target = ["-m", "script"] if as_module else [str(script)]
    run = subprocess.run(
        [sys.executable, "-m", "bench.cpu_profile", str(out), *target, *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=os.environ | {"PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])},
    )
    stats = pstats.Stats(str(out)).stats  # type: ignore[attr-defined]
    cumulative = {name: row[3] for (file, _, name), row in stats.items() if file == str(script)}
    return run.stdout, cumulative


def test_the_script_gets_its_arguments_and_a_wait_costs_no_cpu(tmp_path: Path) -> None:
    printed, cumulative = profiled(tmp_path, "--rounds", "2")
    assert printed.split()[1:] == ["--rounds", "2"]
    assert {"waits", "spins"} <= cumulative.keys()
    # Half a second asleep on the wall clock; on the thread's CPU clock, next to nothing.
    assert cumulative["waits"] < 0.1


def test_an_interrupted_script_still_leaves_its_profile(tmp_path: Path) -> None:
    _, cumulative = profiled(tmp_path, "--interrupt")
    assert "spins" in cumulative


def test_a_module_runs_as_python_m_runs_it(tmp_path: Path) -> None:
    printed, cumulative = profiled(tmp_path, "--port", "8000", as_module=True)
    assert printed.split()[1:] == ["--port", "8000"]
    assert "spins" in cumulative


def test_sigusr1_leaves_out_what_ran_before_it(tmp_path: Path) -> None:
    _, cumulative = profiled(tmp_path, "--restart")
    assert {"after_the_restart", "spins"} <= cumulative.keys()
    assert "waits" not in cumulative
