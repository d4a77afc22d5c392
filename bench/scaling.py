"""Scaling out: `bench.checkout`'s load on 1, 2 and 4 `payql serve` processes, beside its floor.

Run: .venv/bin/python -m bench.scaling [--processes 1,2,4] [--requests 300] [--concurrency 32] [--rounds 3]
     [--mode ports|workers] [--sandbox shared|per-port]
Needs PostgreSQL and Redis (see `bench.servers`). For each process count, PayQL and the checkout floor
(`bench.checkout_floor`) are started with that many processes on the same database, warmed with a few
checkouts each, sent `--requests` checkouts with `--concurrency` in flight in all, and stopped; process
counts and sides alternate round by round. `--mode ports` (the default) starts one process per port and
the load generator spreads requests over them in turn, as a balancer would; `--mode workers` starts one
`payql serve --workers N` (and `uvicorn --workers N` for the floor) on one port, the kernel spreading
the connections. The processes share one sandbox state file, as on the embedded default, whose
cross-process write lock every gateway call takes; `--sandbox per-port` gives each port a file of its
own (a checkout is one request, so it never needs another process's sandbox objects), to tell the
sandbox's scaling apart from PayQL's.

It prints, per side and process count, the median over rounds of the throughput and p99 latency, and
the scaling factors x(N/1) of each side's throughput. The processes, PostgreSQL, Redis and this load
generator share one machine, whose core count it prints: once the processes outnumber the cores, a
process more adds overlap of waits, never CPU, and the floor's own scaling shows that ceiling.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Literal

import aiohttp

from bench.checkout import (
    CUSTOMER,
    Round,
    Send,
    customer_token,
    floor_checkout,
    one_round,
    payql_checkout,
    price_and_customer,
    wait_until_floor,
)
from bench.fanout import QUIET
from bench.load import load_client
from bench.servers import (
    PAYQL,
    BenchDatabase,
    free_port,
    payql_environment,
    start_process,
    stop_process,
    wait_until_healthy,
)

Mode = Literal["ports", "workers"]
Side = Literal["PayQL", "floor"]
SIDES: tuple[Side, ...] = ("PayQL", "floor")
WARM_UP_PER_PROCESS = 4  # checkouts each process serves before the timed round (its first queries, caches)


@dataclass(frozen=True)
class Plan:
    counts: list[int]  # process counts, the first the base of the scaling factors
    requests: int
    concurrency: int
    rounds: int
    mode: Mode
    shared_sandbox: bool  # False: each port its own sandbox state file (the gateway out of the way)


@dataclass(frozen=True)
class Servers:
    urls: list[str]  # one per port the load generator spreads its requests over
    processes: list[subprocess.Popen[bytes]]


def round_robin(send: Send, clients: list[aiohttp.ClientSession]) -> Send:
    """`send` to each client in turn, whichever client `one_round` hands it."""
    turn = itertools.cycle(clients)

    async def send_next(_: aiohttp.ClientSession, price_id: str) -> bool:
        return await send(next(turn), price_id)

    return send_next


@asynccontextmanager
async def serving(bench: BenchDatabase, side: Side, count: int, plan: Plan) -> AsyncIterator[Servers]:
    ports = [free_port() for _ in range(count if plan.mode == "ports" else 1)]
    per_port = ["--workers", str(count)] if plan.mode == "workers" else []
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for port in ports:
            environment = payql_environment(bench, bench.work, port)
            if not plan.shared_sandbox:
                environment["PAYQL_SANDBOX_STATE_PATH"] = str(bench.work / f"sandbox-{port}.sqlite3")
            if per_port and count > 1:
                # `--workers` shares its metrics through a folder: in the run's work folder, it goes with it.
                environment["PROMETHEUS_MULTIPROC_DIR"] = str(bench.work / "metrics")
            log = bench.work / f"{side}-{count}-{port}.log"
            if side == "PayQL":
                processes.append(start_process([PAYQL, "serve", *per_port], environment, log))
            else:
                floor_environment = environment | {"FLOOR_DATABASE_URL": bench.asyncpg_url, "FLOOR_CUSTOMER": CUSTOMER}
                uvicorn = [sys.executable, "-m", "uvicorn", "bench.checkout_floor:app", "--port", str(port), *QUIET]
                processes.append(start_process([*uvicorn, *per_port], floor_environment, log))
        urls = [f"http://127.0.0.1:{port}" for port in ports]
        for url, process in zip(urls, processes, strict=True):
            if side == "PayQL":
                await wait_until_healthy(url + "/healthz", process)
            else:
                await wait_until_floor(url, process)
        yield Servers(urls, processes)
    finally:
        for process in processes:
            stop_process(process)


async def measure(bench: BenchDatabase, side: Side, count: int, plan: Plan, price_id: str) -> Round:
    token = customer_token(bench.jwt_secret)
    send: Send = payql_checkout if side == "PayQL" else floor_checkout
    async with serving(bench, side, count, plan) as servers, AsyncExitStack() as stack:
        headers = {"authorization": f"Bearer {token}"}
        clients = [await stack.enter_async_context(load_client(url, plan.concurrency, headers)) for url in servers.urls]
        spread = round_robin(send, clients)
        warm_up = WARM_UP_PER_PROCESS * count
        await one_round(clients[0], spread, price_id, warm_up, min(plan.concurrency, warm_up))
        return await one_round(clients[0], spread, price_id, plan.requests, plan.concurrency)


async def main(plan: Plan) -> None:
    load_before = os.getloadavg()
    async with BenchDatabase.create() as bench:
        async with serving(bench, "PayQL", 1, plan) as first:
            price_id = await price_and_customer(first.urls[0], customer_token(bench.jwt_secret))
        results: dict[tuple[Side, int], list[Round]] = {(side, count): [] for side in SIDES for count in plan.counts}
        for _ in range(plan.rounds):
            for count in plan.counts:
                for side in SIDES:
                    results[side, count].append(await measure(bench, side, count, plan, price_id))
    report(results, plan, load_before, os.getloadavg())


def report(
    results: dict[tuple[Side, int], list[Round]],
    plan: Plan,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
) -> None:
    def throughput(side: Side, count: int) -> float:
        return statistics.median(r.per_second for r in results[side, count])

    spread = "one port each, requests spread in turn" if plan.mode == "ports" else "`--workers N` on one port"
    sandbox = "one sandbox state file shared by all" if plan.shared_sandbox else "a sandbox state file per port"
    print(
        f"scaling, checkout: {plan.requests} requests x {plan.rounds} rounds, {plan.concurrency} in flight in all,"
        " alternating"
    )
    print(f"processes: {spread}; {sandbox}")
    print(
        f"machine: {os.cpu_count()} cores shared by every process, PostgreSQL, Redis and this load generator;"
        f" load average {load_before[0]:.1f} before, {load_after[0]:.1f} after"
    )
    for side in SIDES:
        for count in plan.counts:
            measured = results[side, count]
            print(
                f"{side:>6}, {count} process{'es' if count > 1 else '  '}: {throughput(side, count):7.1f} checkouts/s,"
                f" p99 {statistics.median(r.p99_ms for r in measured):7.1f} ms,"
                f" failures {sum(r.failures for r in measured)}"
            )
    one = plan.counts[0]
    for side in SIDES:
        factors = ", ".join(
            f"x({count}/{one}) {throughput(side, count) / throughput(side, one):.2f}" for count in plan.counts[1:]
        )
        print(f"scaling {side}: {factors}")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--processes", default="1,2,4", help="process counts, comma-separated, the first the base")
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--mode", choices=["ports", "workers"], default="ports")
    parser.add_argument(
        "--sandbox",
        choices=["shared", "per-port"],
        default="shared",
        help="per-port: each port its own sandbox state file, so the sandbox is not what is measured",
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_arguments()
    asyncio.run(
        main(
            Plan(
                counts=[int(n) for n in arguments.processes.split(",")],
                requests=arguments.requests,
                concurrency=arguments.concurrency,
                rounds=arguments.rounds,
                mode="workers" if arguments.mode == "workers" else "ports",
                shared_sandbox=arguments.sandbox == "shared",
            )
        )
    )
