"""Fan-out: how long one order status change takes to reach N live subscribers, PayQL vs a floor.

Run: .venv/bin/python -m bench.fanout [--subscribers 100,1000] [--rounds 3] [--changes 5]
Needs PostgreSQL and Redis (PAYQL_BENCH_POSTGRES_URL, PAYQL_BENCH_REDIS_URL; the local defaults
otherwise). It creates a throwaway database and Redis prefix, starts `payql serve` and the floor
(`bench.fanout_floor`, a bare Starlette + asyncpg + redis app doing the same work per change) each in
a process of its own, and drives both from this process with N websockets apiece:

1. N subscribers wait on the same order (PayQL: `orderStatus` over graphql-transport-ws, one per socket);
2. the order's status is written in PostgreSQL and the change published on PayQL's Redis channel;
3. each subscriber's latency runs from just before the write to the moment its socket got the new status.

Each round makes `--changes` changes one after another (each once every subscriber got the last) and
pools their latencies. PayQL and the floor alternate round by round, in the same run; the table shows
the median over the rounds of each side's p50 and p99 and the p99 ratio (PayQL / floor; lower is
better, 1.0 is the floor), and this process's own CPU from the change to the last arrival against
that window's length: where they are close, reading the N frames in this one process, not the
server, is what the latency measures.
Each server's CPU over the same window is printed too, with its ratio: the change's cost to the server,
whatever the client's speed, per change (/proc counts in clock ticks of 10 ms: hence several changes).
The load generator shares the machine with both servers: on a shared, noisy machine compare ratios,
not absolute times, and run it more than once.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import asyncpg
import httpx
from redis.asyncio import Redis

from bench.servers import (
    PAYQL,
    BenchDatabase,
    cpu_seconds,
    free_port,
    payql_environment,
    start_process,
    stop_process,
    wait_until_healthy,
)
from payql.auth import mint_token

ORDER_STATUS = "subscription($id: ID!) { orderStatus(orderId: $id) { id status } }"
PRODUCTS = "{ products { prices { id type } } }"
CHECKOUT = """mutation($input: CheckoutInput!) { checkout(input: $input) { order { id status } } }"""
CONNECT_BATCH = 100
BUSY_ATTEMPTS = 10
WAIT_SECONDS = 120.0
QUIET = ("--log-level", "warning")
TICK_MS = 1000 / os.sysconf("SC_CLK_TCK")  # /proc's unit of CPU time


@dataclass
class Round:
    p50_ms: float
    p99_ms: float
    # This process's CPU from the change to the last subscriber's arrival, and that window's length:
    # where the two are close, the load generator reading N frames is what the latency measures.
    client_cpu_ms: float
    window_ms: float
    # The server's CPU over the same window: its cost of the change, whatever the client's speed.
    server_cpu_ms: float


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


Socket = aiohttp.ClientWebSocketResponse


def socket_client() -> aiohttp.ClientSession:
    """The subscribers' client: aiohttp's, whose websocket frames are read in C. The load generator
    shares the cores with the servers and reads N frames a change, so where its cost nears the
    server's, the latency measures the client (`websockets`' client, used before, cost 1.7-1.9 times
    as much CPU a change at N = 5,000). No limit on connections: N sockets stay open at once."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))


async def open_in_batches(count: int, opener: Callable[[], Awaitable[Socket]]) -> list[Socket]:
    sockets: list[Socket] = []
    while len(sockets) < count:
        batch = min(CONNECT_BATCH, count - len(sockets))
        sockets += await asyncio.gather(*(opener() for _ in range(batch)))
    return sockets


class RefusedBusy(Exception):
    """PayQL answered the subscription RATE_LIMITED: busy at set-up (retry shortly), or, once it runs,
    the subscriber dropped as too slow. The message carries PayQL's errors."""


class PayQLSide:
    name = "PayQL"

    def __init__(
        self, client: aiohttp.ClientSession, base_url: str, token: str, order_id: str, slots: Redis, slots_key: str
    ) -> None:
        self.client = client
        self.url = base_url.replace("http://", "ws://") + "/graphql"
        self.token = token
        self.order_id = order_id
        self.slots, self.slots_key = slots, slots_key
        self.busy_refusals = 0

    async def settled(self) -> None:
        """Wait until PayQL has released every subscription of the round (each gives its live slot back
        in Redis as its last step), so that none of its teardown runs during the floor's round."""
        async with asyncio.timeout(WAIT_SECONDS):
            # The slots are another process's: there is no event here to wait on, so poll.
            while await self.slots.zcard(self.slots_key):  # noqa: ASYNC110
                await asyncio.sleep(0.02)

    async def open(self) -> Socket:
        """A subscribed socket, its first status read. A subscription refused as busy (RATE_LIMITED:
        a pool had nothing to give while hundreds open at once) is opened again, as a client told
        to retry shortly does, and counted in `busy_refusals`."""
        for attempt in range(1, BUSY_ATTEMPTS + 1):
            socket = await self.client.ws_connect(self.url, protocols=("graphql-transport-ws",))
            await socket.send_str(
                json.dumps({"type": "connection_init", "payload": {"authorization": f"Bearer {self.token}"}})
            )
            assert json.loads(await socket.receive_str())["type"] == "connection_ack"
            payload = {"query": ORDER_STATUS, "variables": {"id": self.order_id}}
            await socket.send_str(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            try:
                await self.status(socket)
                return socket
            except RefusedBusy:
                self.busy_refusals += 1
                await socket.close()
                await asyncio.sleep(0.2 * attempt)
        raise RuntimeError(f"a subscription was refused as busy {BUSY_ATTEMPTS} times")

    async def status(self, socket: Socket) -> str:
        while True:
            message = json.loads(await socket.receive_str())
            if message["type"] in ("next", "error"):
                errors = message["payload"] if message["type"] == "error" else message["payload"].get("errors")
                if errors:
                    if all((error.get("extensions") or {}).get("code") == "RATE_LIMITED" for error in errors):
                        # At set-up, a refusal to retry; later, a subscriber dropped as too slow: say which.
                        raise RefusedBusy(json.dumps(errors))
                    raise RuntimeError(f"subscription answered with errors: {errors}")
                status: str = message["payload"]["data"]["orderStatus"]["status"]
                return status
            if message["type"] == "complete":
                raise RuntimeError(f"subscription ended: {message}")


class FloorSide:
    name = "floor"

    def __init__(self, client: aiohttp.ClientSession, base_url: str) -> None:
        self.client = client
        self.url = base_url.replace("http://", "ws://") + "/ws"

    async def open(self) -> Socket:
        """A connected socket, its first status read."""
        socket = await self.client.ws_connect(self.url)
        await self.status(socket)
        return socket

    async def status(self, socket: Socket) -> str:
        status: str = json.loads(await socket.receive_str())["status"]
        return status

    async def settled(self) -> None:
        """The floor keeps nothing per socket beyond its set of sockets, gone with the close."""


Side = PayQLSide | FloorSide


async def one_round(
    side: Side,
    server: subprocess.Popen[bytes],
    subscribers: int,
    change: Callable[[str], Awaitable[None]],
    new_statuses: list[str],
) -> Round:
    """N subscribers, then one change per status in `new_statuses`, each once every subscriber got the
    last: the latencies of every change pooled, the CPU and the window per change (several changes a
    round, because /proc counts CPU in clock ticks of 10 ms)."""
    sockets = await asyncio.wait_for(open_in_batches(subscribers, side.open), WAIT_SECONDS)
    try:
        latencies: list[float] = []
        server_cpu = client_cpu = window = 0.0

        async def receive(socket: Socket, status: str, arrived: list[float]) -> None:
            while await side.status(socket) != status:
                pass
            arrived.append(time.perf_counter())

        for new_status in new_statuses:
            arrived: list[float] = []
            receivers = [asyncio.create_task(receive(socket, new_status, arrived)) for socket in sockets]
            server_before, client_before, started = cpu_seconds(server), time.process_time(), time.perf_counter()
            await change(new_status)
            await asyncio.wait_for(asyncio.gather(*receivers), WAIT_SECONDS)
            server_cpu += cpu_seconds(server) - server_before
            client_cpu += time.process_time() - client_before
            window += max(arrived) - started
            latencies += [(moment - started) * 1000 for moment in arrived]
        changes = len(new_statuses)
        return Round(
            percentile(latencies, 0.50),
            percentile(latencies, 0.99),
            client_cpu * 1000 / changes,
            window * 1000 / changes,
            server_cpu * 1000 / changes,
        )
    finally:
        await asyncio.gather(*(socket.close() for socket in sockets), return_exceptions=True)
        await side.settled()


@asynccontextmanager
async def order_changer(
    database_url: str, redis_url: str, channel: str, order_id: str
) -> AsyncIterator[Callable[[str], Awaitable[None]]]:
    """Write the order's status and announce it the way PayQL's after-commit hook does."""
    connection = await asyncpg.connect(database_url)
    redis = Redis.from_url(redis_url)

    async def change(status: str) -> None:
        await connection.execute("UPDATE orders SET status = $1, updated_at = now() WHERE id = $2", status, order_id)
        await redis.publish(channel, json.dumps({"channel": f"order:{order_id}"}))

    try:
        yield change
    finally:
        await redis.aclose()
        await connection.close()


async def pending_order(base_url: str, token: str) -> str:
    """An order left PENDING by a declined card, through PayQL's own checkout."""
    async with httpx.AsyncClient(base_url=base_url, headers={"authorization": f"Bearer {token}"}) as http:
        answer = (await http.post("/graphql", json={"query": PRODUCTS})).json()
        if "errors" in answer:
            raise RuntimeError(f"products: {answer['errors']}")
        products = answer["data"]["products"]
        price = next(p for product in products for p in product["prices"] if p["type"] == "ONE_TIME")
        checkout = {
            "items": [{"priceId": price["id"], "quantity": 1}],
            "gateway": "sandbox",
            "paymentMethod": "pm_card_chargeDeclined",
            "idempotencyKey": str(uuid.uuid4()),
        }
        answer = (await http.post("/graphql", json={"query": CHECKOUT, "variables": {"input": checkout}})).json()
        if not answer.get("data") or not answer["data"]["checkout"]["order"]:
            raise RuntimeError(f"checkout: {answer}")
        order_id: str = answer["data"]["checkout"]["order"]["id"]
        return order_id


async def main(sizes: list[int], rounds: int, changes: int = 5, profile: Path | None = None) -> None:
    async with BenchDatabase.create() as bench:
        work = bench.work
        token = mint_token(bench.jwt_secret, "bench-customer")
        payql_port = free_port()
        environment = payql_environment(bench, work, payql_port)
        profiler = ["-m", "cProfile", "-o", str(profile)] if profile else []
        payql = start_process([sys.executable, *profiler, PAYQL, "serve"], environment, work / "payql.log")
        floor = None
        try:
            base_url = f"http://127.0.0.1:{payql_port}"
            await wait_until_healthy(base_url + "/healthz", payql)
            order_id = await pending_order(base_url, token)
            channel = f"{bench.redis_prefix}order:{order_id}"
            floor_port = free_port()
            floor = start_process(
                [sys.executable, "-m", "uvicorn", "bench.fanout_floor:app", "--port", str(floor_port), *QUIET],
                os.environ
                | {
                    "FLOOR_DATABASE_URL": bench.asyncpg_url,
                    "FLOOR_REDIS_URL": bench.redis_url,
                    "FLOOR_CHANNEL": channel,
                    "FLOOR_ORDER_ID": order_id,
                },
                work / "floor.log",
            )
            floor_url = f"http://127.0.0.1:{floor_port}"
            await wait_for_floor(floor_url, floor)
            slots_key = f"{bench.redis_prefix}live-subscriptions:customer:bench-customer"
            async with (
                Redis.from_url(bench.redis_url) as slots,
                order_changer(bench.asyncpg_url, bench.redis_url, channel, order_id) as change,
                socket_client() as client,
            ):
                payql_side = PayQLSide(client, base_url, token, order_id, slots, slots_key)
                sides: list[Side] = [payql_side, FloorSide(client, floor_url)]
                print(
                    f"fan-out of one status change; {rounds} rounds of {changes} changes per size,"
                    " PayQL and floor alternating"
                )
                print(
                    f"{'N':>6} | {'PayQL p50':>10} {'PayQL p99':>10} | {'floor p50':>10} {'floor p99':>10} | p99 ratio"
                )
                sides_named = ("PayQL", "floor")
                statuses = itertools.cycle(["PROCESSING", "PENDING"])
                for size in sizes:
                    payql_side.busy_refusals = 0
                    results: dict[str, list[Round]] = {side.name: [] for side in sides}
                    for _ in range(rounds):
                        for side in sides:
                            server = payql if side.name == "PayQL" else floor
                            new_statuses = [next(statuses) for _ in range(changes)]
                            results[side.name].append(await one_round(side, server, size, change, new_statuses))
                    payql_p50, payql_p99 = median_round(results["PayQL"])
                    floor_p50, floor_p99 = median_round(results["floor"])
                    print(
                        f"{size:>6} | {payql_p50:>8.1f}ms {payql_p99:>8.1f}ms | {floor_p50:>8.1f}ms {floor_p99:>8.1f}ms"
                        f" | {payql_p99 / floor_p99:.2f}x"
                    )
                    print(
                        "       load generator CPU until the last arrival (median of rounds): "
                        + ", ".join(
                            f"{name} {statistics.median(r.client_cpu_ms for r in measured):.1f} ms"
                            f" of {statistics.median(r.window_ms for r in measured):.1f} ms"
                            for name, measured in results.items()
                        )
                    )
                    payql_cpu, floor_cpu = (statistics.median(r.server_cpu_ms for r in results[n]) for n in sides_named)
                    # Under a clock tick a change, a side's reading is mostly the tick it happened to cross.
                    ratio = f"{payql_cpu / floor_cpu:.2f}x" if floor_cpu >= TICK_MS else "no ratio: under a tick"
                    print(
                        f"       server CPU until the last arrival: PayQL {payql_cpu:.1f} ms, floor {floor_cpu:.1f} ms,"
                        f" {ratio}"
                    )
                    if payql_side.busy_refusals:
                        refused = payql_side.busy_refusals
                        print(f"       PayQL subscriptions refused as busy, then opened again: {refused}")
        finally:
            if floor is not None:
                stop_process(floor)
            stop_process(payql, interrupt=profile is not None)


async def wait_for_floor(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    async with socket_client() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("the floor server exited at start")
            try:
                socket = await client.ws_connect(url.replace("http://", "ws://") + "/ws")
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.1)
                continue
            await socket.close()
            return
    raise RuntimeError("the floor server did not start")


def median_round(rounds: list[Round]) -> tuple[float, float]:
    return statistics.median(r.p50_ms for r in rounds), statistics.median(r.p99_ms for r in rounds)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", default="100,1000", help="comma-separated subscriber counts")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--changes", type=int, default=5, help="status changes a round, one after another")
    parser.add_argument("--profile", type=Path, help="write a cProfile of the PayQL server here (read with pstats)")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_arguments()
    sizes = [int(n) for n in arguments.subscribers.split(",")]
    asyncio.run(main(sizes, arguments.rounds, arguments.changes, arguments.profile))
