"""Checkout throughput: PayQL's checkout mutation vs a floor running the same statements.

Run: .venv/bin/python -m bench.checkout [--requests 300] [--concurrency 32] [--rounds 3] [--ceiling] [--jobs worker]
     [--profile FILE]
Needs PostgreSQL and Redis (see `bench.servers`). PayQL (`payql serve`, sandbox gateway, card
approved) and the floor (`bench.checkout_floor`: Starlette + asyncpg, the same 19 statements and the
receipt's 5, no GraphQL, ORM, encryption, gateway call or email) each run in a process of their own
on the same database; this process sends `--requests` checkouts to each with `--concurrency` in
flight, alternating round by round. It prints the median over rounds of each side's throughput,
p99 latency and server CPU time per checkout (the server process's user + system time during its
round, from /proc: Linux only), PostgreSQL's and Redis's CPU per checkout during each side's rounds
(every `postgres` and `redis-server` process on the machine: run nothing else on them meanwhile),
this process's own CPU per checkout (the load generator's), how many cores the machine kept busy,
the throughput ratio (PayQL / floor; higher is better, 1.0 is the floor) and the CPU ratio (PayQL /
floor; lower is better). Throughput moves with whatever else runs on the machine; CPU per checkout
much less. The load generator shares the machine with both servers: on a shared, noisy machine
compare ratios, not absolute numbers. Where the machine's CPU is the limit (its cores all busy), the
throughput ratio is about the ratio of each side's whole CPU a checkout (server, tiers and load
generator), so a load generator moved off the machine would lower PayQL's ratio, not raise it.

`--ceiling` adds two sides, PayQL with its checkout's work taken out (`bench.checkout_ceiling`: the
same app, middleware and GraphQL, every checkout answered with the first one's committed order and
payment) and the floor with its work taken out (`POST /checkout/answered`). It prints PayQL's CPU
served without work against the floor's whole checkout (the share of PayQL's cost that is serving
the request rather than doing the checkout) and a bound (`serving_bound`): the least CPU ratio and
the highest throughput ratio PayQL could reach served as it is, were its checkout's work to cost no
more than the floor's. Then, its servers stopped, it measures what a checkout must do beyond the
floor's statements (`bench.obligations`: the payment limit, the gateway call, encryption at rest, the
receipt's job and message), each part alone, and prints the highest throughput ratio PayQL could reach
were the rest of its code free: served as it is, doing only those parts besides the statements.

`--jobs worker` runs each side's receipts as production runs PayQL's: in a worker process of its own
(`payql worker` with `PAYQL_JOB_QUEUE=redis`; the floor's `bench.checkout_floor_worker`, fed from a
Redis list) instead of in the server. After each round it waits until every receipt is sent, and
prints each worker's CPU a checkout and the ratio of server and worker together.

`--profile FILE` runs PayQL's server (with `--jobs worker` its worker too, FILE.worker; with `--ceiling`
the served-without-work side, FILE.ceiling) under
`bench.cpu_profile`: cProfile timed by the event loop thread's CPU clock. A wall-clock profile (py-spy's
samples, cProfile's default) misleads here: with both cores busy, a server's thread waits runnable for
a core, and the wait is charged to whatever ran last, most often a socket write that woke PostgreSQL.
Measured so (perf, on-CPU samples), 70% of PayQL's server CPU is the interpreter running Python and 2-3%
is asyncpg's protocol; py-spy had put 24% in asyncpg. cProfile's own cost is a few microseconds a call,
so read its profile for shares of calls and of CPU between parts, not for milliseconds. The profiles
start again (SIGUSR1) as the measured rounds begin, so they leave out start-up and set-up, and the run
ends by printing each profiled process's Python calls a checkout: a count that does not move with the
machine, where CPU times spread by 15% between runs, so a change to PayQL's own work too small to see in
the ratios still shows there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pstats
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx

from bench.fanout import PRODUCTS, QUIET
from bench.load import LOAD_ERRORS, load_client
from bench.obligations import measure as measure_obligations
from bench.obligations import print_obligations
from bench.servers import (
    PAYQL,
    PERIODIC_OFF,
    TIERS,
    BenchDatabase,
    cpu_seconds,
    free_port,
    machine_busy_seconds,
    payql_environment,
    start_process,
    stop_process,
    tier_cpu_seconds,
    wait_until_healthy,
)
from payql.auth import mint_token

CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) {
  order { id status total { amount currency } } payment { id status } userErrors { code message } } }"""
CUSTOMER = "bench-customer"
NO_WORK = "PayQL, no work"
CEILING_APP = "bench.checkout_ceiling:ceiling_app"
FLOOR_NO_WORK = "floor, no work"


def customer_token(secret: str) -> str:
    """The benchmark's shopper, with an email address as a real shop's shoppers have: every paid order's
    receipt is rendered and written to the mailbox (`PAYQL_MAILBOX_PATH`), as PayQL does for them."""
    return mint_token(secret, CUSTOMER, email=f"{CUSTOMER}@example.com")


@dataclass
class Round:
    per_second: float
    p99_ms: float
    failures: int


Send = Callable[[aiohttp.ClientSession, str], Awaitable[bool]]

# The first answers that were not a paid order, printed after the figures: a failure in a run
# must be readable from its output, not only counted.
UNPAID_KEPT = 3
unpaid_answers: list[str] = []


def keep_unpaid(side: str, description: str) -> None:
    if len(unpaid_answers) < UNPAID_KEPT:
        unpaid_answers.append(f"{side}: {description[:600]}")


async def payql_checkout(http: aiohttp.ClientSession, price_id: str) -> bool:
    checkout = {
        "items": [{"priceId": price_id, "quantity": 1}],
        "gateway": "sandbox",
        "paymentMethod": "pm_card_visa",
        "idempotencyKey": str(uuid.uuid4()),
    }
    async with http.post("/graphql", json={"query": CHECKOUT, "variables": {"input": checkout}}) as response:
        status, text = response.status, await response.text()
    try:
        answer: dict[str, Any] = json.loads(text)
    except ValueError:  # not JSON: a proxy's or the server's plain error page
        answer = {}
    data = answer.get("data") or {}
    paid = bool(data.get("checkout")) and data["checkout"]["order"]["status"] == "PAID"
    if not paid:
        keep_unpaid("PayQL", f"HTTP {status} {text}")
    return paid


async def floor_checkout(http: aiohttp.ClientSession, price_id: str, path: str = "/checkout") -> bool:
    async with http.post(path, json={"priceId": price_id, "idempotencyKey": str(uuid.uuid4())}) as response:
        status, text = response.status, await response.text()
    paid = status == 200 and json.loads(text)["order"]["status"] == "PAID"
    if not paid:
        keep_unpaid("floor", f"HTTP {status} {text}")
    return paid


async def floor_answered(http: aiohttp.ClientSession, price_id: str) -> bool:
    return await floor_checkout(http, price_id, "/checkout/answered")


@dataclass(frozen=True)
class SideCost:
    """One side's CPU a checkout (medians of rounds): its server, the tiers behind it, this process, and
    with `--jobs worker` its worker."""

    server_ms: float
    tiers_ms: float
    client_ms: float
    worker_ms: float = 0.0

    @property
    def total_ms(self) -> float:
        return self.server_ms + self.tiers_ms + self.client_ms + self.worker_ms


@dataclass(frozen=True)
class ServingBound:
    cpu_ratio: float  # the least PayQL / floor server CPU a checkout
    throughput_ratio: float  # the highest PayQL / floor throughput, the machine's CPU the limit


def serving_bound(
    floor: SideCost, floor_serving_ms: float, payql_serving: SideCost, obligations_ms: float = 0.0
) -> ServingBound:
    """The best PayQL's checkout could do served as it is (`--ceiling`) if its work cost no more than the
    floor's: the floor's checkout plus what PayQL's serving adds above the floor's (`payql_serving`, PayQL
    served without work, less `floor_serving_ms`, the floor served without work). Behind the server, the
    floor's tiers (and worker); in this process, what a PayQL request costs the load generator. With
    `obligations_ms` (`bench.obligations`: what a checkout must do beyond the floor's statements, the
    least each part costs), the best it could do were the rest of PayQL's code free."""
    least_server_ms = floor.server_ms + payql_serving.server_ms - floor_serving_ms
    least_total_ms = least_server_ms + floor.tiers_ms + floor.worker_ms + payql_serving.client_ms + obligations_ms
    return ServingBound(least_server_ms / floor.server_ms, floor.total_ms / least_total_ms)


async def one_round(http: aiohttp.ClientSession, send: Send, price_id: str, requests: int, concurrency: int) -> Round:
    latencies: list[float] = []
    failures = 0
    remaining = requests

    async def worker() -> None:
        nonlocal remaining, failures
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            try:
                served = await send(http, price_id)
            except LOAD_ERRORS as error:
                keep_unpaid("client", f"{type(error).__name__}: {error}")
                served = False
            failures += not served
            latencies.append((time.perf_counter() - started) * 1000)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return Round(requests / elapsed, ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], failures)


async def price_and_customer(base_url: str, token: str) -> str:
    """A one-time price of the demo catalog; one checkout makes the customer the floor charges as."""
    async with load_client(base_url, 1, {"authorization": f"Bearer {token}"}) as http:
        async with http.post("/graphql", json={"query": PRODUCTS}) as response:
            products = (await response.json())["data"]["products"]
        price_id: str = next(p["id"] for product in products for p in product["prices"] if p["type"] == "ONE_TIME")
        if not await payql_checkout(http, price_id):
            raise RuntimeError("PayQL's first checkout did not pay")
        return price_id


async def receipts_sent(database_url: str, workers: Iterable[subprocess.Popen[bytes]]) -> None:
    """Until every outbox message (both sides' receipts) is SENT: a worker's drain after a round. A
    worker that exited fails the run at once, rather than after the wait's two minutes."""
    connection = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(120):
            # Other processes write the rows: there is no event here to wait on, so poll.
            while await connection.fetchval("SELECT count(*) FROM outbox_messages WHERE status <> 'SENT'"):
                for worker in workers:
                    if worker.poll() is not None:
                        raise RuntimeError(f"a worker exited (status {worker.returncode}); see its log")
                await asyncio.sleep(0.05)
    finally:
        await connection.close()


def python(profile: Path | None, suffix: str) -> list[str]:
    """The interpreter that runs one of the benchmark's Python processes: under `bench.cpu_profile`, its
    profile written beside `profile` with `suffix` added to the name, when there is a profile to write."""
    if profile is None:
        return [sys.executable]
    return [sys.executable, "-m", "bench.cpu_profile", str(profile.with_name(profile.name + suffix))]


async def main(
    requests: int,
    concurrency: int,
    rounds: int,
    profile: Path | None = None,
    ceiling: bool = False,
    jobs: str = "server",
) -> None:
    async with BenchDatabase.create() as bench:
        token = customer_token(bench.jwt_secret)
        payql_port, floor_port = free_port(), free_port()
        in_workers = jobs == "worker"
        payql_jobs = {"PAYQL_JOB_QUEUE": "redis"} if in_workers else {}
        environment = payql_environment(bench, bench.work, payql_port, **payql_jobs)
        payql = start_process([*python(profile, ""), PAYQL, "serve"], environment, bench.work / "payql.log")
        floor_environment = {"FLOOR_DATABASE_URL": bench.asyncpg_url, "FLOOR_CUSTOMER": CUSTOMER}
        if in_workers:
            floor_environment |= {
                "FLOOR_REDIS_URL": bench.redis_url,
                "FLOOR_RECEIPT_QUEUE": f"{bench.redis_prefix}floor-receipts",
            }
        floor = start_process(
            [sys.executable, "-m", "uvicorn", "bench.checkout_floor:app", "--port", str(floor_port), *QUIET],
            environment | floor_environment,
            bench.work / "floor.log",
        )
        # With --jobs worker, each side's receipts run in a worker process of its own.
        workers = (
            {
                "PayQL": start_process(
                    [*python(profile, ".worker"), PAYQL, "worker"],
                    environment | PERIODIC_OFF,
                    bench.work / "worker.log",
                ),
                "floor": start_process(
                    [sys.executable, "-m", "bench.checkout_floor_worker"],
                    environment | floor_environment,
                    bench.work / "floor-worker.log",
                ),
            }
            if in_workers
            else {}
        )
        ceiling_port = free_port()
        # As `payql serve` runs its app: the app alone decides whom to believe about addresses.
        ceiling_options = ("--port", str(ceiling_port), "--no-proxy-headers", *QUIET)
        served_without_work = (
            start_process(
                [*python(profile, ".ceiling"), "-m", "uvicorn", CEILING_APP, "--factory", *ceiling_options],
                payql_environment(bench, bench.work, ceiling_port),
                bench.work / "ceiling.log",
            )
            if ceiling
            else None
        )
        # The processes run under `bench.cpu_profile` (with --profile), by their profile's suffix.
        candidates = {"": payql, ".worker": workers.get("PayQL"), ".ceiling": served_without_work}
        profiled = {suffix: process for suffix, process in candidates.items() if profile and process is not None}
        # With --ceiling, what the bound is computed from: the floor's cost, its serving alone, PayQL's serving alone.
        serving_costs: tuple[SideCost, float, SideCost] | None = None
        try:
            payql_url, floor_url = f"http://127.0.0.1:{payql_port}", f"http://127.0.0.1:{floor_port}"
            ceiling_url = f"http://127.0.0.1:{ceiling_port}"
            await wait_until_healthy(payql_url + "/healthz", payql)
            await wait_until_floor(floor_url, floor)
            price_id = await price_and_customer(payql_url, token)
            headers = {"authorization": f"Bearer {token}"}
            async with (
                load_client(payql_url, concurrency, headers) as payql_http,
                load_client(floor_url, concurrency) as floor_http,
                load_client(ceiling_url, concurrency, headers) as ceiling_http,
            ):
                sides: list[tuple[str, aiohttp.ClientSession, Send, subprocess.Popen[bytes]]] = [
                    ("PayQL", payql_http, payql_checkout, payql),
                    ("floor", floor_http, floor_checkout, floor),
                ]
                if served_without_work is not None:
                    await wait_until_healthy(ceiling_url + "/healthz", served_without_work)
                    # Its one real checkout, which every later one repeats.
                    if not await payql_checkout(ceiling_http, price_id):
                        raise RuntimeError("the ceiling's first checkout did not pay")
                    sides.append((NO_WORK, ceiling_http, payql_checkout, served_without_work))
                    sides.append((FLOOR_NO_WORK, floor_http, floor_answered, floor))
                if profile is not None:
                    # The profiles leave out start-up and this set-up from here on.
                    for process in profiled.values():
                        process.send_signal(signal.SIGUSR1)
                    await payql_http.get("/healthz")  # a turn of the server's loop: the restart is in
                results: dict[str, list[Round]] = {name: [] for name, _, _, _ in sides}
                cpu_ms: dict[str, list[float]] = {name: [] for name, _, _, _ in sides}
                worker_ms: dict[str, list[float]] = {name: [] for name in workers}
                client_ms: dict[str, list[float]] = {name: [] for name, _, _, _ in sides}
                busy_cores: dict[str, list[float]] = {name: [] for name, _, _, _ in sides}
                tier_ms: dict[tuple[str, str], list[float]] = {}
                for _ in range(rounds):
                    for name, http, send, server in sides:
                        before, tiers_before = cpu_seconds(server), tier_cpu_seconds()
                        client_before, busy_before = time.process_time(), machine_busy_seconds()
                        worker = workers.get(name)
                        worker_before = cpu_seconds(worker) if worker is not None else 0.0
                        started = time.monotonic()
                        results[name].append(await one_round(http, send, price_id, requests, concurrency))
                        if worker is not None:
                            # The round's receipts drained: its worker's CPU, and its tiers', are all counted.
                            await receipts_sent(bench.asyncpg_url, workers.values())
                            worker_ms[name].append((cpu_seconds(worker) - worker_before) * 1000 / requests)
                        cpu_ms[name].append((cpu_seconds(server) - before) * 1000 / requests)
                        client_ms[name].append((time.process_time() - client_before) * 1000 / requests)
                        busy_cores[name].append((machine_busy_seconds() - busy_before) / (time.monotonic() - started))
                        for tier, seconds in tier_cpu_seconds().items():
                            spent = (seconds - tiers_before[tier]) * 1000 / requests
                            tier_ms.setdefault((name, tier), []).append(spent)
            print(f"checkout, {requests} requests x {rounds} rounds, {concurrency} in flight, alternating")
            for name, measured in results.items():
                print(
                    f"{name:>6}: {statistics.median(r.per_second for r in measured):7.1f} checkouts/s,"
                    f" p99 {statistics.median(r.p99_ms for r in measured):7.1f} ms,"
                    f" CPU {statistics.median(cpu_ms[name]):5.2f} ms a checkout,"
                    f" failures {sum(r.failures for r in measured)}"
                )
            for tier in TIERS:
                print(
                    f"{tier} CPU a checkout (all its processes, median of rounds): "
                    + ", ".join(f"{name} {statistics.median(tier_ms[(name, tier)]):.2f} ms" for name in results)
                )
            print(
                "load generator (this process) CPU a checkout: "
                + ", ".join(f"{name} {statistics.median(client_ms[name]):.2f} ms" for name in results)
            )
            if workers:
                payql_worker, floor_worker = (statistics.median(worker_ms[name]) for name in ("PayQL", "floor"))
                both = [statistics.median(cpu_ms[name]) + statistics.median(worker_ms[name]) for name in workers]
                print(
                    f"worker CPU a checkout (its receipt): PayQL {payql_worker:.2f} ms, floor {floor_worker:.2f} ms;"
                    f" server and worker together PayQL / floor {both[0] / both[1]:.2f}x"
                )
            print(
                f"cores the machine kept busy (of {os.cpu_count()}): "
                + ", ".join(f"{name} {statistics.median(busy_cores[name]):.2f}" for name in results)
            )
            for description in unpaid_answers:
                print(f"  not paid: {description}")
            ratio = statistics.median(r.per_second for r in results["PayQL"]) / statistics.median(
                r.per_second for r in results["floor"]
            )
            print(f"throughput ratio PayQL / floor: {ratio:.2f}x")
            cpu_ratio = statistics.median(cpu_ms["PayQL"]) / statistics.median(cpu_ms["floor"])
            print(f"CPU per checkout PayQL / floor: {cpu_ratio:.2f}x")
            if NO_WORK in cpu_ms:
                serving = statistics.median(cpu_ms[NO_WORK])
                print(
                    f"CPU serving a checkout without its work / the floor's whole checkout:"
                    f" {serving / statistics.median(cpu_ms['floor']):.2f}x"
                    f" ({serving / statistics.median(cpu_ms['PayQL']):.0%} of PayQL's checkout)"
                )

                def cost(name: str) -> SideCost:
                    tiers = sum(statistics.median(tier_ms[(name, tier)]) for tier in TIERS)
                    worker = statistics.median(worker_ms[name]) if name in worker_ms else 0.0
                    return SideCost(statistics.median(cpu_ms[name]), tiers, statistics.median(client_ms[name]), worker)

                serving_costs = (cost("floor"), statistics.median(cpu_ms[FLOOR_NO_WORK]), cost(NO_WORK))
                bound = serving_bound(*serving_costs)
                print(
                    "were PayQL's checkout work to cost what the floor's does, served as it is:"
                    f" CPU a checkout {bound.cpu_ratio:.2f}x the floor's at least,"
                    f" throughput {bound.throughput_ratio:.2f}x at most (where the machine's CPU is the limit)"
                )
        finally:
            for process in workers.values():
                stop_process(process, interrupt=profile is not None)
            if served_without_work is not None:
                stop_process(served_without_work, interrupt=profile is not None)
            stop_process(floor)
            stop_process(payql, interrupt=profile is not None)
        if profile is not None:
            print_calls(profile, requests * rounds, profiled)
        if serving_costs is not None:
            # Measured once the servers are gone, each part alone: the least it costs (see `bench.obligations`).
            obligations = await measure_obligations(bench.redis_url, bench.redis_prefix, bench.work, requests, jobs)
            print_obligations(obligations)
            bound = serving_bound(*serving_costs, obligations_ms=obligations.total_ms)
            without_mailbox = serving_bound(*serving_costs, obligations_ms=obligations.production_ms)
            floor_ms = serving_costs[0].total_ms
            print(
                "and were the rest of PayQL's code free, doing only that besides the floor's statements:"
                f" throughput {bound.throughput_ratio:.2f}x at most;"
                f" {without_mailbox.throughput_ratio:.2f}x with the mailbox's file free too (production sends by SMTP);"
                f" {floor_ms / (floor_ms + obligations.production_ms):.2f}x with serving as cheap as the floor's too"
            )


def print_calls(profile: Path, checkouts: int, profiled: dict[str, subprocess.Popen[bytes]]) -> None:
    """Python calls a checkout in each profiled process (by its profile's suffix), from its profile's total:
    a measure of a change to PayQL's own work that does not move with the machine (cProfile counts a
    coroutine's every resumption as a call)."""
    counts = []
    for suffix in profiled:
        stats = pstats.Stats(str(profile.with_name(profile.name + suffix)))
        counts.append(f"{PROFILED_NAMES[suffix]} {stats.total_calls / checkouts:,.0f}")  # type: ignore[attr-defined]
    print("Python calls a checkout (the measured rounds only): " + ", ".join(counts))


# Each profiled process's name in the output, by what its profile's file name adds to FILE's.
PROFILED_NAMES = {"": "server", ".worker": "worker", ".ceiling": "served without its work"}


async def wait_until_floor(url: str, process: Any) -> None:
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient() as http:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("the floor exited at start")
            try:
                await http.get(url + "/")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the floor did not start")


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--ceiling", action="store_true", help="also serve checkouts with their work taken out")
    parser.add_argument(
        "--profile",
        type=Path,
        help="write a profile of the PayQL server's CPU here (its worker's to FILE.worker, the ceiling's to"
        " FILE.ceiling; read with pstats)",
    )
    parser.add_argument(
        "--jobs",
        choices=("server", "worker"),
        default="server",
        help="where each side's receipts run: in its server (the default) or a worker process of its own",
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_arguments()
    asyncio.run(
        main(
            arguments.requests,
            arguments.concurrency,
            arguments.rounds,
            arguments.profile,
            arguments.ceiling,
            arguments.jobs,
        )
    )
