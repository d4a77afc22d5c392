"""Worker drain: how fast `payql worker` empties a backlog, vs a floor doing the same database work.

Run: .venv/bin/python -m bench.worker [--backlog 2000] [--rounds 3] [--workers 1,2]
Needs PostgreSQL and Redis (see `bench.servers`). `payql serve` runs with the Redis job queue and no
worker, so each signed sandbox delivery posted to it (`bench.webhooks`' events, of a type PayQL stores
and then ignores) is stored and its processing job waits in saq. With `--backlog` jobs waiting, the
benchmark starts 1 (then 2) `payql worker` processes and waits until every event of the backlog is
final. The floor (`bench.worker_floor`: asyncpg + redis, the same 2 statements per job, its queue one
Redis list) drains a copy of the same rows, with as many processes. Periodic jobs are off in the
workers, so only the backlog runs.

Per round and side it reads the events' own `processed_at`: the drain rate (jobs/s) is taken over
the middle of the drain, from 20% to 90% of the backlog done (the workers warm and, with two, both
at work, unless one took longer to start than a fifth of the drain), and the time to empty runs from
the processes' launch to the last event done (start-up included: importing PayQL takes seconds on a
loaded machine). It prints the median over rounds, the ratio PayQL / floor
(higher is better, 1.0 is the floor) and the scaling from 1 to 2 processes. Servers, workers and this
process share the machine: on a shared, noisy machine compare ratios, and read the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import asyncpg
from redis.asyncio import Redis

from bench.checkout import one_round
from bench.load import load_client
from bench.servers import (
    PAYQL,
    PERIODIC_OFF,
    BenchDatabase,
    free_port,
    payql_environment,
    start_process,
    stop_process,
    wait_until_healthy,
)
from bench.webhooks import sender

FILL_CONCURRENCY = 32
DRAIN_SECONDS = 600.0
POLL_SECONDS = 0.1
# A copy of the latest stored sandbox events, as new floor rows waiting to be processed.
COPY_BACKLOG = (
    "INSERT INTO webhook_events (gateway, event_id, event_type, status, attempts, headers, body, source_ip,"
    " received_at) SELECT 'floor', 'floor-' || event_id, event_type, 'RECEIVED', 0, headers, body, source_ip, now()"
    " FROM webhook_events WHERE gateway = 'sandbox' ORDER BY id DESC LIMIT $1 RETURNING id"
)
PROGRESS = (
    "SELECT count(*) FILTER (WHERE status IN ('PROCESSED', 'IGNORED', 'DEAD')) AS final,"
    " count(*) FILTER (WHERE status = 'IGNORED') AS ignored FROM webhook_events WHERE gateway = $1 AND id > $2"
)
# When the backlog's events were done: the first, the last, and the middle of the drain.
DONE_AT = (
    "SELECT min(done) AS first, max(done) AS last, percentile_cont($3) WITHIN GROUP (ORDER BY done) AS early,"
    " percentile_cont($4) WITHIN GROUP (ORDER BY done) AS late"
    " FROM (SELECT extract(epoch FROM processed_at)::float8 AS done FROM webhook_events"
    " WHERE gateway = $1 AND id > $2) AS backlog"
)
# The drain rate is read between these fractions of the backlog done: past the first jobs of a
# worker that just started (and, with several, once the slower to start has joined), before the tail.
MIDDLE = (0.2, 0.9)


@dataclass
class Drain:
    per_second: float
    empty_seconds: float
    startup_seconds: float
    failures: int


@dataclass(frozen=True)
class Backlog:
    gateway: str
    after_id: int  # the backlog is every row of `gateway` past this id
    size: int


async def last_id(db: asyncpg.Connection) -> int:
    found: int = await db.fetchval("SELECT coalesce(max(id), 0) FROM webhook_events")
    return found


async def fill_payql(db: asyncpg.Connection, base_url: str, secret: str, size: int) -> Backlog:
    """Deliveries stored and their jobs queued in saq, with no worker to take them."""
    after = await last_id(db)
    async with load_client(base_url, FILL_CONCURRENCY) as http:
        sent = await one_round(http, sender("/webhooks/sandbox", secret), "", size, FILL_CONCURRENCY)
    if sent.failures:
        raise RuntimeError(f"{sent.failures} of {size} deliveries were not stored")
    return Backlog("sandbox", after, size)


async def fill_floor(db: asyncpg.Connection, redis: Redis, queue: str, size: int) -> Backlog:
    """The same stored rows again, their ids queued in the floor's Redis list."""
    after = await last_id(db)
    ids = [row["id"] for row in await db.fetch(COPY_BACKLOG, size)]
    if len(ids) != size:
        raise RuntimeError(f"only {len(ids)} stored events to copy for the floor's backlog of {size}")
    await redis.rpush(queue, *ids)
    return Backlog("floor", after, size)


async def drain(db: asyncpg.Connection, backlog: Backlog, processes: list[subprocess.Popen[bytes]]) -> Drain:
    launched = time.time()  # the workers stamp processed_at from the same clock
    deadline = time.monotonic() + DRAIN_SECONDS
    while True:
        progress = await db.fetchrow(PROGRESS, backlog.gateway, backlog.after_id)
        if progress["final"] >= backlog.size:
            break
        for process in processes:
            if process.poll() is not None:
                raise RuntimeError(f"a {backlog.gateway} worker exited (status {process.returncode}); see its log")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{backlog.size - progress['final']} events still unprocessed after {DRAIN_SECONDS} s")
        await asyncio.sleep(POLL_SECONDS)
    done = await db.fetchrow(DONE_AT, backlog.gateway, backlog.after_id, *MIDDLE)
    middle = max(done["late"] - done["early"], 1e-6)
    return Drain(
        per_second=(MIDDLE[1] - MIDDLE[0]) * backlog.size / middle,
        empty_seconds=done["last"] - launched,
        startup_seconds=done["first"] - launched,
        failures=backlog.size - progress["ignored"],
    )


async def main(backlog_size: int, rounds: int, worker_counts: list[int]) -> None:
    async with BenchDatabase.create() as bench:
        port = free_port()
        environment = payql_environment(bench, bench.work, port, PAYQL_JOB_QUEUE="redis")
        secret = environment["PAYQL_SANDBOX_WEBHOOK_SECRETS"]
        floor_queue = f"{bench.redis_prefix}floor-jobs"
        floor_environment = environment | {
            "FLOOR_DATABASE_URL": bench.asyncpg_url,
            "FLOOR_REDIS_URL": bench.redis_url,
            "FLOOR_QUEUE": floor_queue,
        }
        serve = start_process([PAYQL, "serve"], environment, bench.work / "payql.log")
        db = await asyncpg.connect(bench.asyncpg_url)
        redis = Redis.from_url(bench.redis_url)
        load_before = os.getloadavg()
        try:
            base_url = f"http://127.0.0.1:{port}"
            await wait_until_healthy(base_url + "/healthz", serve)
            results: dict[tuple[str, int], list[Drain]] = {
                (side, count): [] for count in worker_counts for side in ("PayQL", "floor")
            }
            for _ in range(rounds):
                for count in worker_counts:
                    backlog = await fill_payql(db, base_url, secret, backlog_size)
                    command = [PAYQL, "worker"]
                    logs = [bench.work / f"worker-{n}.log" for n in range(count)]
                    results["PayQL", count].append(await run_workers(db, backlog, command, environment, logs))
                    backlog = await fill_floor(db, redis, floor_queue, backlog_size)
                    command = [sys.executable, "-m", "bench.worker_floor"]
                    logs = [bench.work / f"floor-{n}.log" for n in range(count)]
                    results["floor", count].append(await run_workers(db, backlog, command, floor_environment, logs))
            report(results, backlog_size, rounds, worker_counts, load_before, os.getloadavg())
        finally:
            await redis.aclose()
            await db.close()
            stop_process(serve)


async def run_workers(
    db: asyncpg.Connection, backlog: Backlog, command: list[str], environment: dict[str, str], logs: list[Path]
) -> Drain:
    processes = [start_process(command, environment | PERIODIC_OFF, log) for log in logs]
    try:
        return await drain(db, backlog, processes)
    finally:
        for process in processes:
            stop_process(process)


def report(
    results: dict[tuple[str, int], list[Drain]],
    backlog_size: int,
    rounds: int,
    worker_counts: list[int],
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    def median_rate(side: str, count: int) -> float:
        return statistics.median(d.per_second for d in results[side, count])

    print(f"worker drain, backlog of {backlog_size} stored webhook events x {rounds} rounds, alternating")
    print(
        f"machine: {os.cpu_count()} cores shared by the workers, PayQL's server, PostgreSQL, Redis and this process;"
        f" load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    for count in worker_counts:
        for side in ("PayQL", "floor"):
            measured = results[side, count]
            print(
                f"{side:>6}, {count} worker{'s' if count > 1 else ' '}: {median_rate(side, count):7.1f} jobs/s,"
                f" empty {statistics.median(d.empty_seconds for d in measured):6.1f} s after launch"
                f" (start-up {statistics.median(d.startup_seconds for d in measured):4.1f} s),"
                f" failures {sum(d.failures for d in measured)}"
            )
    for count in worker_counts:
        ratio = median_rate("PayQL", count) / median_rate("floor", count)
        print(f"drain ratio PayQL / floor, {count} worker(s): {ratio:.2f}x")
    one = worker_counts[0]
    for count in worker_counts[1:]:
        print(
            f"scaling {one} -> {count} workers: PayQL x{median_rate('PayQL', count) / median_rate('PayQL', one):.2f},"
            f" floor x{median_rate('floor', count) / median_rate('floor', one):.2f}"
        )


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", default="1,2", help="worker processes per side, comma-separated")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_arguments()
    asyncio.run(main(arguments.backlog, arguments.rounds, [int(n) for n in arguments.workers.split(",")]))
