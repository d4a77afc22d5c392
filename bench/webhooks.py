"""Webhook ingestion: PayQL's `POST /webhooks/sandbox` vs a floor that verifies and inserts alike.

Run: .venv/bin/python -m bench.webhooks [--requests 600] [--concurrency 32] [--rounds 3] [--jobs worker|deferred]
Needs PostgreSQL and Redis (see `bench.servers`). PayQL (`payql serve`) and the floor
(`bench.webhook_floor`: Starlette + asyncpg, HMAC check and one INSERT … ON CONFLICT DO NOTHING) run in
processes of their own on the same database; this process sends each `--requests` signed deliveries of
distinct events (of a type PayQL stores and then ignores) with `--concurrency` in flight, alternating
round by round. It prints the median over rounds of accepted deliveries per second, p99 latency and
server CPU time per accepted delivery (the server process's user + system time from /proc during its
own round, PayQL's including its jobs' catch-up after it; PostgreSQL's own time is in neither), the
throughput ratio (PayQL / floor; 1.0 is the floor) and the CPU ratio (PayQL / floor; lower is better).
On a shared, noisy machine compare ratios.

PayQL acknowledges a delivery before its in-process job has processed it: after each PayQL round the
benchmark waits until every stored event is final before the floor's round starts, so PayQL's
leftover processing never runs during (and slows) the floor's round, and prints how long that took.

`--jobs worker` runs PayQL as production does: its server queues each batch of stored events in Redis
(`PAYQL_JOB_QUEUE=redis`) and a `payql worker` process processes them, running beside the server (on
the same cores) during PayQL's rounds. The server's CPU is then the ingestion alone; the worker's CPU a
delivery is printed beside it.

`--jobs deferred` measures the ingestion alone, as the floor's work is: verify, store, queue in Redis and
acknowledge. The server queues as in `worker`, but the worker is held (SIGSTOP) during every round (in
production it runs on cores of its own); after each PayQL round it is let go until the round's events
are all final, and how long that took and its CPU a delivery are printed. The other modes charge
PayQL's rounds with processing the floor never does, on the same two cores.

Every side's PostgreSQL CPU a delivery and the whole machine's busy CPU a delivery (every process: the
servers, PostgreSQL, the load) are printed too: over the round, and in `server` mode its catch-up.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import statistics
import subprocess
import sys
import time
import uuid

import aiohttp
import asyncpg

from bench.checkout import Round, Send, one_round, wait_until_floor
from bench.fanout import QUIET
from bench.load import load_client
from bench.servers import (
    PAYQL,
    PERIODIC_OFF,
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
from gateways.stripe_signature import SIGNATURE_HEADER, sign


def delivery(secret: str) -> tuple[bytes, dict[str, str]]:
    """A signed event of its own id, of a type the sandbox's webhooks store and then ignore."""
    event = {"id": f"evt_bench_{uuid.uuid4().hex}", "type": "bench.ping", "created": int(time.time()), "data": {}}
    body = json.dumps(event).encode()
    return body, {"content-type": "application/json", SIGNATURE_HEADER: sign(secret, int(time.time()), body)}


UNPROCESSED = "SELECT count(*) FROM webhook_events WHERE gateway = 'sandbox' AND status IN ('RECEIVED', 'FAILED')"


async def wait_until_processed(database_url: str) -> float:
    """Seconds until no stored sandbox event is left to process (PayQL's jobs caught up)."""
    started = time.perf_counter()
    connection = await asyncpg.connect(database_url)
    try:
        async with asyncio.timeout(120):
            # Another process writes the rows: there is no event here to wait on, so poll.
            while await connection.fetchval(UNPROCESSED):  # noqa: ASYNC110
                await asyncio.sleep(0.05)
    finally:
        await connection.close()
    return time.perf_counter() - started


def sender(path: str, secret: str) -> Send:
    async def send(http: aiohttp.ClientSession, _: str) -> bool:
        body, headers = delivery(secret)
        async with http.post(path, data=body, headers=headers) as answer:
            return answer.status == 200 and (await answer.json()).get("duplicate") is False

    return send


async def main(requests: int, concurrency: int, rounds: int, jobs: str = "server") -> None:
    async with BenchDatabase.create() as bench:
        payql_port, floor_port = free_port(), free_port()
        in_worker, deferred = jobs == "worker", jobs == "deferred"
        environment = payql_environment(
            bench, bench.work, payql_port, **({"PAYQL_JOB_QUEUE": "redis"} if in_worker or deferred else {})
        )
        secret = environment["PAYQL_SANDBOX_WEBHOOK_SECRETS"]
        payql = start_process([PAYQL, "serve"], environment, bench.work / "payql.log")
        worker = (
            start_process([PAYQL, "worker"], environment | PERIODIC_OFF, bench.work / "worker.log")
            if in_worker or deferred
            else None
        )
        floor = start_process(
            [sys.executable, "-m", "uvicorn", "bench.webhook_floor:app", "--port", str(floor_port), *QUIET],
            environment | {"FLOOR_DATABASE_URL": bench.asyncpg_url, "FLOOR_WEBHOOK_SECRET": secret},
            bench.work / "floor.log",
        )
        try:
            payql_url, floor_url = f"http://127.0.0.1:{payql_port}", f"http://127.0.0.1:{floor_port}"
            await wait_until_healthy(payql_url + "/healthz", payql)
            await wait_until_floor(floor_url, floor)
            async with (
                load_client(payql_url, concurrency) as payql_http,
                load_client(floor_url, concurrency) as floor_http,
            ):
                sides: list[tuple[str, aiohttp.ClientSession, Send, subprocess.Popen[bytes]]] = [
                    ("PayQL", payql_http, sender("/webhooks/sandbox", secret), payql),
                    ("floor", floor_http, sender("/webhooks/floor", secret), floor),
                ]
                if deferred and worker is not None:
                    # Once it has processed a first delivery, the worker is up: then it is held.
                    await sides[0][2](payql_http, "")
                    await wait_until_processed(bench.asyncpg_url)
                    worker.send_signal(signal.SIGSTOP)
                results: dict[str, list[Round]] = {name: [] for name, _, _, _ in sides}
                cpu_ms: dict[str, list[float]] = {name: [] for name, _, _, _ in sides}
                # PostgreSQL's CPU a delivery, and the whole machine's (every process, the load's too).
                postgres_ms: dict[str, list[float]] = {name: [] for name, _, _, _ in sides}
                machine_ms: dict[str, list[float]] = {name: [] for name, _, _, _ in sides}
                catching_up: list[float] = []
                # The worker's CPU a delivery in each side's rounds: in the floor's, what an idle worker
                # takes from the machine (and so from the floor).
                worker_ms: dict[str, list[float]] = {name: [] for name, _, _, _ in sides}
                # A deferred round's processing after it: the worker's seconds and its CPU a delivery.
                deferred_seconds: list[float] = []
                deferred_ms: list[float] = []
                for _ in range(rounds):
                    for name, http, send, server in sides:
                        before = cpu_seconds(server)
                        postgres_before, machine_before = tier_cpu_seconds(("postgres",)), machine_busy_seconds()
                        worker_before = cpu_seconds(worker) if worker is not None else 0.0
                        outcome = await one_round(http, send, "", requests, concurrency)
                        results[name].append(outcome)
                        if name == "PayQL" and not deferred:
                            catching_up.append(await wait_until_processed(bench.asyncpg_url))
                        if worker is not None and not deferred:
                            worker_ms[name].append((cpu_seconds(worker) - worker_before) * 1000 / requests)
                        accepted = max(1, requests - outcome.failures)
                        cpu_ms[name].append((cpu_seconds(server) - before) * 1000 / accepted)
                        postgres = tier_cpu_seconds(("postgres",))["postgres"] - postgres_before["postgres"]
                        postgres_ms[name].append(postgres * 1000 / accepted)
                        machine_ms[name].append((machine_busy_seconds() - machine_before) * 1000 / accepted)
                        if name == "PayQL" and deferred and worker is not None:
                            worker_before = cpu_seconds(worker)
                            worker.send_signal(signal.SIGCONT)
                            deferred_seconds.append(await wait_until_processed(bench.asyncpg_url))
                            worker.send_signal(signal.SIGSTOP)
                            deferred_ms.append((cpu_seconds(worker) - worker_before) * 1000 / accepted)
            where = {
                "server": "the server's in-process queue",
                "worker": "a payql worker beside the server",
                "deferred": "a payql worker after each of its rounds",
            }[jobs]
            print(
                f"webhook ingestion, {requests} deliveries x {rounds} rounds, {concurrency} in flight, alternating;"
                f" PayQL's events processed by {where}"
            )
            for name, measured in results.items():
                print(
                    f"{name:>6}: {statistics.median(r.per_second for r in measured):7.1f} accepted/s,"
                    f" p99 {statistics.median(r.p99_ms for r in measured):7.1f} ms,"
                    f" CPU {statistics.median(cpu_ms[name]):5.2f} ms a delivery"
                    f" (PostgreSQL {statistics.median(postgres_ms[name]):4.2f},"
                    f" machine {statistics.median(machine_ms[name]):4.2f}),"
                    f" failures {sum(r.failures for r in measured)}"
                )
            if deferred:
                print(
                    f"PayQL's worker after each round: {statistics.median(deferred_seconds):.1f} s to process it,"
                    f" CPU {statistics.median(deferred_ms):5.2f} ms a delivery"
                )
            else:
                print(
                    f"PayQL's jobs caught up {statistics.median(catching_up) * 1000:.0f} ms"
                    " after its last acknowledgement"
                )
            if in_worker:
                print(
                    f"PayQL's worker: CPU {statistics.median(worker_ms['PayQL']):5.2f} ms a delivery in PayQL's rounds,"
                    f" {statistics.median(worker_ms['floor']):5.2f} ms in the floor's (idle)"
                )
            ratio = statistics.median(r.per_second for r in results["PayQL"]) / statistics.median(
                r.per_second for r in results["floor"]
            )
            print(f"ingestion ratio PayQL / floor: {ratio:.2f}x")
            cpu_ratio = statistics.median(cpu_ms["PayQL"]) / statistics.median(cpu_ms["floor"])
            print(f"CPU per delivery PayQL / floor: {cpu_ratio:.2f}x")
        finally:
            stop_process(floor)
            stop_process(payql)
            if worker is not None:
                worker.send_signal(signal.SIGCONT)  # a held process would not end on SIGTERM
                stop_process(worker)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=600)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--jobs",
        choices=("server", "worker", "deferred"),
        default="server",
        help="where PayQL processes the stored events: its server's in-process queue, a payql worker"
        " beside it, or a payql worker after each round (the ingestion alone)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_arguments()
    asyncio.run(main(arguments.requests, arguments.concurrency, arguments.rounds, arguments.jobs))
