"""A `payql serve` and a `payql worker` on Redis Sentinel (`PAYQL_REDIS_URL=redis+sentinel://…`): checkouts
are paid before the primary is killed, while the sentinel promotes the replica, and after; the worker
goes on processing the sandbox's webhooks. The throwaway primary, replica and sentinel are
`tests/payql/test_redis_sentinel.py`'s; the database is a SQLite file of the test's own."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.payql.test_redis_sentinel import SentinelGroup, group
from tests.ports import free_port
from tests.processes import PayQLProcess, cli, payql_environment
from tests.testkit import CHECKOUT, new_key, token_for

__all__ = ["group"]  # a fixture, used by name

# How many times a checkout answered "unavailable, retry shortly" is sent again, after its Retry-After.
RESENDS = 10


async def processed_webhooks(metrics_url: str) -> int:
    """Webhook jobs the worker ran: one delivery's, or one for deliveries stored together."""
    async with httpx.AsyncClient(timeout=5) as client:
        text = (await client.get(metrics_url)).text
    lines = [
        f'payql_job_runs_total{{job="{job}",outcome="ok"}}'
        for job in ("process_webhook_event", "process_webhook_events")
    ]
    return sum(int(float(row.split()[-1])) for row in text.splitlines() if any(row.startswith(line) for line in lines))


@pytest.mark.timeout(240)
async def test_serve_and_a_worker_ride_out_a_sentinel_failover(group: SentinelGroup, tmp_path: Path) -> None:
    port, metrics_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = payql_environment(f"sqlite://{tmp_path / 'payql.sqlite3'}", tmp_path) | {
        "PAYQL_REDIS_URL": group.url,
        "PAYQL_REDIS_KEY_PREFIX": f"sentinel-{uuid.uuid4().hex[:8]}:",
        "PAYQL_JOB_QUEUE": "redis",
        "PAYQL_PORT": str(port),
        "PAYQL_PUBLIC_BASE_URL": base_url,
        "PAYQL_WORKER_METRICS_PORT": str(metrics_port),
    }
    await cli(env, "migrate")
    await cli(env, "seed-demo")
    processes = [
        PayQLProcess(env, tmp_path / "worker.log", "worker"),
        PayQLProcess(env, tmp_path / "serve.log", "serve"),
    ]
    shopper = f"customer-{uuid.uuid4().hex[:8]}"
    try:
        for process in processes:
            process.start()
        await processes[1].wait_healthy(base_url)
        async with httpx.AsyncClient(
            base_url=base_url, timeout=60, headers={"authorization": f"Bearer {token_for(shopper)}"}
        ) as client:
            products = (await client.post("/graphql", json={"query": "{ products { prices { id type } } }"})).json()
            price_id = next(
                price["id"]
                for product in products["data"]["products"]
                for price in product["prices"]
                if price["type"] == "ONE_TIME"
            )

            async def checkout() -> dict[str, Any]:
                """One checkout, sent again with its key while it is answered "unavailable, retry shortly"."""
                variables = {
                    "input": {
                        "items": [{"priceId": price_id}],
                        "paymentMethod": "pm_card_visa",
                        "idempotencyKey": new_key(),
                    }
                }
                for _ in range(RESENDS):
                    response = await client.post("/graphql", json={"query": CHECKOUT, "variables": variables})
                    body: dict[str, Any] = response.json()
                    codes = [error["extensions"]["code"] for error in body.get("errors", [])]
                    if codes != ["SERVICE_UNAVAILABLE"]:
                        assert response.status_code == 200, response.text
                        paid: dict[str, Any] = body["data"]["checkout"]
                        return paid
                    await asyncio.sleep(int(response.headers["retry-after"]))
                raise AssertionError(f"still unavailable after {RESENDS} sends")

            before = await checkout()
            await group.ready_to_fail_over()
            group.primary.stop()  # SIGKILL
            during = await checkout()
            await group.wait_for_primary(group.replica.port)
            after = await checkout()
        orders = [before, during, after]
        assert [order["order"]["status"] for order in orders] == ["PAID"] * 3, orders

        async def worker_caught_up() -> None:
            while await processed_webhooks(f"http://127.0.0.1:{metrics_port}/") < len(orders):
                await asyncio.sleep(0.2)

        await asyncio.wait_for(worker_caught_up(), 60)
    finally:
        for process in processes:
            process.stop()
    # The server answered every request (a checkout during the election is answered SERVICE_UNAVAILABLE,
    # not with a stack). The worker's saq may log the end of a job it could not write while no primary
    # answered: that job's heartbeat lapses and the sweep ends it; its work was already committed.
    assert "Traceback" not in processes[1].log(), processes[1].log()
