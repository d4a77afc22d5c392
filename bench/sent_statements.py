"""CPU per written-out statement: sent through tortoise's `execute_query` / `execute_query_dict`, as
the money path's statements were, against `db.sent_statements` (straight to asyncpg), which sends
them now.

Run: .venv/bin/python -m bench.sent_statements [--statements 5000] [--rounds 5]
Needs PostgreSQL (see `bench.servers`; Redis only for the throwaway prefix's cleanup). On a
throwaway database, inside a `one_connection()` block as a checkout's statements run, it reads one
product by its key and updates one column of it, `--statements` times each, per path, alternating
path round by round. It prints, per statement on each path, the Python function calls made in this
process (counted with `sys.setprofile` over 100 statements: the same on any machine) and the median
over rounds of this process's CPU time (`time.process_time`; PostgreSQL's own time is in neither).
Sent one after another, a statement's CPU is mostly the socket's system calls and wake-ups, which
no path changes; the calls show what the path itself costs. Timing lives here, never in the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from types import FrameType

from tortoise import Tortoise, connections

from bench.servers import BenchDatabase
from db import sent_statements
from db.config import tortoise_config
from db.models import Product
from db.one_connection import one_connection

READ = 'SELECT "id", "name", "description", "active", "created_at" FROM "products" WHERE "id" = $1'
WRITE = 'UPDATE "products" SET "description" = $1 WHERE "id" = $2'

Path = Callable[[str, str], Awaitable[object]]


async def through_tortoise(statement: str, product_id: str) -> object:
    client = connections.get("default")
    if statement is READ:
        return await client.execute_query_dict(statement, [product_id])
    return await client.execute_query(statement, ["benchmarked", product_id])


async def sent_directly(statement: str, product_id: str) -> object:
    client = connections.get("default")
    if statement is READ:
        return await sent_statements.fetch(client, statement, [product_id])
    await sent_statements.execute(client, statement, ["benchmarked", product_id])
    return None


async def cpu_per_statement(path: Path, statement: str, product_id: str, count: int) -> float:
    """Microseconds of this process's CPU per statement, `count` statements on one held connection."""
    async with one_connection():
        await path(statement, product_id)  # the connection taken and the statement prepared
        start = time.process_time()
        for _ in range(count):
            await path(statement, product_id)
        return (time.process_time() - start) / count * 1e6


async def python_calls_per_statement(path: Path, statement: str, product_id: str) -> float:
    """Python functions called (Python code and built-ins alike) per statement, over 100 statements."""
    count = 100
    calls = 0

    def counted(_frame: FrameType, event: str, _arg: object) -> None:
        nonlocal calls
        if event in ("call", "c_call"):
            calls += 1

    async with one_connection():
        await path(statement, product_id)
        sys.setprofile(counted)
        try:
            for _ in range(count):
                await path(statement, product_id)
        finally:
            sys.setprofile(None)
    return calls / count


async def main(statements: int, rounds: int) -> None:
    async with BenchDatabase.create() as bench:
        await Tortoise.init(config=tortoise_config(bench.database_url))
        try:
            product = await Product.first()
            if product is None:
                raise SystemExit("the seeded database has no product")
            product_id = str(product.id)
            paths: dict[str, Path] = {"tortoise execute_query": through_tortoise, "db.sent_statements": sent_directly}
            print(f"CPU per statement (this process), {statements} statements x {rounds} rounds, alternating")
            for label, statement in (("read one row", READ), ("update one column", WRITE)):
                measured: dict[str, list[float]] = {name: [] for name in paths}
                for _ in range(rounds):
                    for name, path in paths.items():
                        measured[name].append(await cpu_per_statement(path, statement, product_id, statements))
                medians = {name: statistics.median(values) for name, values in measured.items()}
                for name, values in measured.items():
                    calls = await python_calls_per_statement(paths[name], statement, product_id)
                    print(
                        f" {label:18} {name:24} {calls:5.0f} Python calls,"
                        f" CPU {medians[name]:6.1f} µs ({min(values):.1f}-{max(values):.1f})"
                    )
        finally:
            await Tortoise.close_connections()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.statements, arguments.rounds))
