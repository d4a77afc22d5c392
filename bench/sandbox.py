"""The sandbox processor alone: concurrent `create_payment_intent` calls on a state file, calls per second.

Run: .venv/bin/python -m bench.sandbox [--calls 2000] [--concurrency 32] [--rounds 3]
No servers needed. Each round opens a fresh state file in a temporary folder and runs `--calls` calls,
`--concurrency` at a time, through one `SandboxProcessor`; it prints calls/s and the commits the file
took (its version: one per committed write transaction). Then it reopens the file from a new processor
and checks every intent is there (durability, not speed, is what a faster path could lose).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from gateways.sandbox.processor import SandboxProcessor
from gateways.sandbox.processor.state_file import SandboxStateFile


async def one_round(folder: Path, calls: int, concurrency: int) -> tuple[float, int]:
    """(calls per second, commits) for one round on a fresh state file in `folder`."""
    path = folder / "sandbox.sqlite3"
    processor = SandboxProcessor(state_path=path)
    await processor.open()
    gate = asyncio.Semaphore(concurrency)

    async def create(index: int) -> str:
        async with gate:
            intent = await processor.create_payment_intent(
                amount=1000, currency="USD", payment_method="pm_card_visa", idempotency_key=f"bench-{index}"
            )
            return intent.id

    started = time.perf_counter()
    ids = await asyncio.gather(*(create(index) for index in range(calls)))
    elapsed = time.perf_counter() - started
    await processor.aclose()

    state_file = SandboxStateFile(path)
    commits = state_file.version()
    state_file.close()
    reopened = SandboxProcessor(state_path=path)
    stored = {intent.id for intent in await reopened.list_payment_intents()}
    await reopened.aclose()
    missing = set(ids) - stored
    if missing:
        raise SystemExit(f"{len(missing)} intents reported created are not in the state file")
    return calls / elapsed, commits


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    for round_number in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory() as folder:
            rate, commits = await one_round(Path(folder), args.calls, args.concurrency)
        print(f"round {round_number}: {rate:8.0f} calls/s, {commits} commits for {args.calls} calls")


if __name__ == "__main__":
    asyncio.run(main())
