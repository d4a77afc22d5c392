"""A 10x burst: 320 checkouts at once against one PayQL process, then the database's invariants.

Run: .venv/bin/python -m bench.burst [--requests 320] [--customers 32]
Needs PostgreSQL and Redis (see `bench.servers`). Every idempotency key is sent twice, at the same
moment, by the same customer. The answers are sorted into: paid, a user error (by code), busy
(RATE_LIMITED with Retry-After: a pool had nothing to give), shed (503 with Retry-After: over
PAYQL_MAX_IN_FLIGHT_REQUESTS), "Unexpected error." (must be 0), and transport errors or timeouts.
Then, after the server has settled: no order with two successful payments, no key answered with two
different orders, and nothing left in flight (no idempotency claim still IN_PROGRESS, no payment
still PENDING or PROCESSING). The p99 printed is that of the requests that were served.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Mapping
from typing import Any

import aiohttp
import asyncpg
import httpx

from bench.checkout import CHECKOUT
from bench.fanout import PRODUCTS
from bench.servers import (
    PAYQL,
    BenchDatabase,
    free_port,
    payql_environment,
    start_process,
    stop_process,
    wait_until_healthy,
)
from payql.auth import mint_token

TIMEOUT_SECONDS = 30.0
SETTLE_SECONDS = 30.0
INVARIANTS = {
    "orders with two successful payments": (
        "SELECT count(*) FROM (SELECT order_id FROM payments WHERE status IN ('PAID', 'AUTHORIZED')"
        " GROUP BY order_id HAVING count(*) > 1) AS doubled"
    ),
    "idempotency claims still in progress": "SELECT count(*) FROM idempotency_records WHERE state = 'IN_PROGRESS'",
    "payments still pending or processing": ("SELECT count(*) FROM payments WHERE status IN ('PENDING', 'PROCESSING')"),
}


def classify(status: int, headers: Mapping[str, str], body: dict[str, Any] | None) -> tuple[str, str | None]:
    """(outcome, order id when one was named) of an answer: its status, headers and JSON body (None
    for a 503, whose body is not read)."""
    if status == 503 or body is None:
        return ("shed or busy: 503 with Retry-After" if "retry-after" in headers else "503 without Retry-After"), None
    errors = body.get("errors") or []
    if errors:
        if any(error.get("message") == "Unexpected error." for error in errors):
            return "UNEXPECTED ERROR", None
        codes = {str((error.get("extensions") or {}).get("code")) for error in errors}
        label = "busy: RATE_LIMITED" if codes == {"RATE_LIMITED"} else f"error {sorted(codes)}"
        if label.startswith("busy") and "retry-after" not in headers:
            label += " WITHOUT Retry-After"
        return label, None
    checkout = body["data"]["checkout"]
    order = checkout.get("order") or {}
    if checkout["userErrors"]:
        return f"user error {checkout['userErrors'][0]['code']}", order.get("id")
    return f"order {order.get('status')}", order.get("id")


async def burst(base_url: str, secret: str, price_id: str, requests: int, customers: int) -> None:
    tokens = [mint_token(secret, f"burst-customer-{n}") for n in range(customers)]
    # Each key twice, by the same customer: the copies race each other inside the burst.
    plan = [(tokens[n % customers], str(uuid.uuid4())) for n in range(requests // 2)] * 2
    outcomes: Counter[str] = Counter()
    orders_by_key: dict[str, set[str]] = defaultdict(set)
    served_ms: list[float] = []
    start = asyncio.Event()

    async def one(http: aiohttp.ClientSession, token: str, key: str) -> None:
        checkout = {
            "items": [{"priceId": price_id, "quantity": 1}],
            "gateway": "sandbox",
            "paymentMethod": "pm_card_visa",
            "idempotencyKey": key,
        }
        await start.wait()
        began = time.perf_counter()
        try:
            async with http.post(
                "/graphql",
                json={"query": CHECKOUT, "variables": {"input": checkout}},
                headers={"authorization": f"Bearer {token}"},
            ) as response:
                body = None if response.status == 503 else await response.json()
                outcome, order_id = classify(response.status, response.headers, body)
        except TimeoutError:
            outcomes["client timeout"] += 1
            return
        except aiohttp.ClientError as error:
            outcomes[f"transport error {type(error).__name__}"] += 1
            return
        outcomes[outcome] += 1
        if order_id:
            orders_by_key[key].add(order_id)
        if outcome.startswith(("order", "user error")):
            served_ms.append((time.perf_counter() - began) * 1000)

    # aiohttp's client (`bench.load`): httpx's cost 2.8 ms of CPU a request here, so its 320 requests
    # left the client over a second, not at once. A connection of its own for each request, closed after
    # it, as a burst of browsers opens them.
    connector = aiohttp.TCPConnector(limit=requests, force_close=True)
    timeout = aiohttp.ClientTimeout(total=TIMEOUT_SECONDS)
    async with aiohttp.ClientSession(base_url, connector=connector, timeout=timeout) as http:
        tasks = [asyncio.create_task(one(http, token, key)) for token, key in plan]
        await asyncio.sleep(0)
        began = time.perf_counter()
        start.set()
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - began
    print(f"{requests} checkouts at once ({requests // 2} keys, each sent twice), answered in {elapsed:.1f} s:")
    for outcome, count in sorted(outcomes.items(), key=lambda item: -item[1]):
        print(f"  {count:>5}  {outcome}")
    print(f"  {outcomes['UNEXPECTED ERROR']:>5}  unexpected errors in all")
    if served_ms:
        served_ms.sort()
        print(
            f"  served: p50 {served_ms[len(served_ms) // 2]:.0f} ms, p99 {served_ms[int(0.99 * len(served_ms))]:.0f} ms"
        )
    doubled = sum(1 for orders in orders_by_key.values() if len(orders) > 1)
    print(f"  {doubled:>5}  keys answered with two different orders")


async def check_invariants(database_url: str) -> None:
    connection = await asyncpg.connect(database_url)
    try:
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            counts = {name: await connection.fetchval(sql) for name, sql in INVARIANTS.items()}
            if not any(counts.values()) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    finally:
        await connection.close()
    print("database afterwards:")
    for name, count in counts.items():
        print(f"  {count:>5}  {name}")


async def main(requests: int, customers: int, max_in_flight: int | None) -> None:
    async with BenchDatabase.create() as bench:
        port = free_port()
        overrides = {"PAYQL_MAX_IN_FLIGHT_REQUESTS": str(max_in_flight)} if max_in_flight else {}
        environment = payql_environment(bench, bench.work, port, **overrides)
        payql = start_process([PAYQL, "serve"], environment, bench.work / "payql.log")
        try:
            base_url = f"http://127.0.0.1:{port}"
            await wait_until_healthy(base_url + "/healthz", payql)
            token = mint_token(bench.jwt_secret, "burst-setup")
            async with httpx.AsyncClient(base_url=base_url, headers={"authorization": f"Bearer {token}"}) as http:
                products = (await http.post("/graphql", json={"query": PRODUCTS})).json()["data"]["products"]
            price_id = next(p["id"] for product in products for p in product["prices"] if p["type"] == "ONE_TIME")
            await burst(base_url, bench.jwt_secret, price_id, requests, customers)
            await check_invariants(bench.asyncpg_url)
        finally:
            stop_process(payql)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=320, help="checkouts sent at once (even)")
    parser.add_argument("--customers", type=int, default=32)
    parser.add_argument("--max-in-flight", type=int, help="PAYQL_MAX_IN_FLIGHT_REQUESTS for the server (default 256)")
    return parser.parse_args()


if __name__ == "__main__":
    arguments = parse_arguments()
    asyncio.run(main(arguments.requests, arguments.customers, arguments.max_in_flight))
