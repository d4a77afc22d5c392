"""The chaos campaign, large: `python -m bench.chaos [--operations N] [--seed S]`.

Runs tests/chaos's campaign on a throwaway stack (PostgreSQL + Redis when PAYQL_TEST_BACKEND=servers, which
`make bench` sets; the embedded defaults otherwise), then prints what it did and what it found: operations,
faults injected, invariant violations (must be 0), failovers taken, and checkout latency under faults.
Every fault hits the campaign's own database, Redis and processes, never the shared servers."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from tests.chaos.campaign import Campaign
from tests.chaos.invariants import failovers, settle, violations
from tests.chaos.stack import open_stack


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def main(operations: int, seed: int, concurrency: int, fault_rate: float) -> int:
    with tempfile.TemporaryDirectory(prefix="payql-chaos-") as folder:
        stack = await open_stack(Path(folder))
        try:
            started = time.perf_counter()
            campaign = Campaign(stack, seed=seed, operations=operations, concurrency=concurrency, fault_rate=fault_rate)
            figures = await campaign.run()
            ran = time.perf_counter() - started
            left = await settle(stack, campaign.shoppers)
            settled = time.perf_counter() - started - ran
            found = await violations(stack, figures, left)
            taken = await failovers(stack)
            await campaign.aclose()
        finally:
            await stack.close()
    backend = "PostgreSQL + Redis" if os.environ.get("PAYQL_TEST_BACKEND") == "servers" else "embedded (SQLite)"
    seconds = figures.checkout_seconds
    print(f"chaos campaign on {backend}: seed {seed}, {concurrency} at a time, a fault after {fault_rate:.0%} of waves")
    print(f"  operations        {sum(figures.operations.values())}  {dict(sorted(figures.operations.items()))}")
    print(f"  faults injected   {sum(figures.faults.values())}  {dict(sorted(figures.faults.items()))}")
    print(f"  processes killed  {dict(sorted(stack.kills.items()))}")
    print(f"  outcomes          {dict(sorted(figures.outcomes.items()))}")
    print(f"  failovers taken   {taken}")
    print(f"  requests resent   {figures.resent} (no answer: the instance was down)")
    print(f"  told to retry     {figures.told_to_retry} (busy, with Retry-After: a database connection was ended)")
    print(
        f"  checkout latency  p50 {statistics.median(seconds) * 1000:.0f} ms, "
        f"p99 {percentile(seconds, 0.99) * 1000:.0f} ms over {len(seconds)} checkouts (resends included)"
    )
    print(f"  run {ran:.0f} s, settling {settled:.0f} s")
    print(f"  invariant violations  {len(found)}")
    for violation in found:
        print(f"    - {violation}")
    return 1 if found else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=400)
    parser.add_argument("--seed", type=int, default=20261206)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--fault-rate", type=float, default=0.5)
    options = parser.parse_args()
    sys.exit(asyncio.run(main(options.operations, options.seed, options.concurrency, options.fault_rate)))
