"""The compose stack's sequence as plain processes on PostgreSQL and Redis: two `payql migrate` at
once, two `payql serve` instances and a `payql worker`. A status change made through instance A
reaches a subscriber on instance B, and a checkout retried on B with A's idempotency key replays
A's answer; the health checks each container would run pass."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.backends import Backend, backend_name, create_backend, destroy_backend
from tests.ports import free_port
from tests.processes import PayQLProcess, cli
from tests.testkit import (
    CHECKOUT,
    PAY_ORDER,
    TEST_DATA_KEY_ENV,
    TEST_JWT_SECRET,
    TEST_WEBHOOK_SECRET,
    new_key,
    token_for,
)
from tests.wsclient import graphql_ws

ORDER_STATUS = "subscription($id: ID!) { orderStatus(orderId: $id) { id status } }"


@pytest.fixture
async def own_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    if backend_name() != "servers":
        pytest.skip("several instances share state through PostgreSQL and Redis: PAYQL_TEST_BACKEND=servers")
    backend = await create_backend(tmp_path)
    yield backend
    await destroy_backend(backend)


async def graphql(base_url: str, subject: str, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"authorization": f"Bearer {token_for(subject)}"},
        )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def until_exit_code(env: dict[str, str], expected: int, *args: str) -> None:
    async def poll() -> None:
        while (await cli(env, *args, check=False)).returncode != expected:
            await asyncio.sleep(0.5)

    await asyncio.wait_for(poll(), 60)


@pytest.mark.timeout(240)
async def test_two_instances_and_a_worker_share_one_state(own_backend: Backend, tmp_path: Path) -> None:
    assert own_backend.redis_url is not None
    env = {
        "PAYQL_ENVIRONMENT": "development",
        "PAYQL_DATABASE_URL": own_backend.database_url,
        "PAYQL_REDIS_URL": own_backend.redis_url,
        "PAYQL_REDIS_KEY_PREFIX": own_backend.redis_prefix,
        "PAYQL_JWT_SECRET": TEST_JWT_SECRET,
        "PAYQL_SANDBOX_STATE_PATH": str(tmp_path / "sandbox.sqlite3"),
        "PAYQL_SANDBOX_WEBHOOK_SECRETS": TEST_WEBHOOK_SECRET,
        "PAYQL_DEVELOPMENT_SECRETS_PATH": str(tmp_path / "development-secrets.json"),
        "PAYQL_MAILBOX_PATH": str(tmp_path / "mailbox"),
        "PAYQL_RECONCILE_INTERVAL_SECONDS": "0",
    } | TEST_DATA_KEY_ENV
    migrations = await asyncio.gather(cli(env, "migrate", check=False), cli(env, "migrate", check=False))
    assert [result.returncode for result in migrations] == [0, 0], [result.stderr for result in migrations]
    await cli(env, "seed-demo")
    assert (await cli(env, "worker", "--check", check=False)).returncode == 1  # no worker yet

    ports = free_port(), free_port()
    a_url, b_url = (f"http://127.0.0.1:{port}" for port in ports)
    a_env, b_env = (
        env | {"PAYQL_PORT": str(port), "PAYQL_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"} for port in ports
    )
    worker_metrics = free_port()
    instances = [
        PayQLProcess(env | {"PAYQL_WORKER_METRICS_PORT": str(worker_metrics)}, tmp_path / "worker.log", "worker"),
        PayQLProcess(a_env, tmp_path / "a.log", "serve"),
        PayQLProcess(b_env, tmp_path / "b.log", "serve"),
    ]
    try:
        for process in instances:
            process.start()
        await asyncio.gather(instances[1].wait_healthy(a_url), instances[2].wait_healthy(b_url))
        await until_exit_code(env, 0, "worker", "--check")
        assert (await cli(a_env, "healthcheck", check=False)).returncode == 0

        shopper = f"customer-{uuid.uuid4().hex[:8]}"
        products = await graphql(a_url, shopper, "{ products { prices { id type unitAmount { currency } } } }")
        price_id = next(
            price["id"]
            for product in products["data"]["products"]
            for price in product["prices"]
            if price["unitAmount"]["currency"] == "USD" and price["type"] == "ONE_TIME"
        )

        # A status change made through A reaches a subscriber on B (Redis pub/sub).
        declined_input = {"items": [{"priceId": price_id}], "paymentMethod": "pm_card_chargeDeclined"}
        declined = await graphql(a_url, shopper, CHECKOUT, {"input": declined_input | {"idempotencyKey": new_key()}})
        order_id = declined["data"]["checkout"]["order"]["id"]
        async with graphql_ws(b_url, token_for(shopper)) as ws:
            stream = ws.subscribe(ORDER_STATUS, {"id": order_id})
            first = await asyncio.wait_for(anext(stream), timeout=20)
            pay = {"orderId": order_id, "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}
            paid = await graphql(a_url, shopper, PAY_ORDER, {"input": pay})
            assert paid["data"]["payOrder"]["order"]["status"] == "PAID", paid
            rest = await asyncio.wait_for(_collect(stream), timeout=20)
        statuses = [message["payload"]["data"]["orderStatus"]["status"] for message in [first, *rest]]
        assert statuses[0] == "PENDING" and statuses[-1] == "PAID", statuses

        # A checkout retried on B with A's key replays A's answer.
        retried = {
            "input": {"items": [{"priceId": price_id}], "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}
        }
        on_a = await graphql(a_url, shopper, CHECKOUT, retried)
        on_b = await graphql(b_url, shopper, CHECKOUT, retried)
        assert on_a["data"]["checkout"]["payment"]["status"] == "PAID", on_a
        assert on_b == on_a

        # The sandbox's webhooks reach A and B; the worker processes them and counts it on its own port.
        async def worker_processed_webhooks() -> None:
            async with httpx.AsyncClient(timeout=5) as client:
                while True:
                    text = (await client.get(f"http://127.0.0.1:{worker_metrics}/")).text
                    # One delivery's job, or one job for deliveries that were stored together.
                    if any(
                        f'job="{job}",outcome="ok"' in text
                        for job in ("process_webhook_event", "process_webhook_events")
                    ):
                        return
                    await asyncio.sleep(0.5)

        await asyncio.wait_for(worker_processed_webhooks(), 60)
    finally:
        for process in instances:
            process.stop()
    logs = "".join(process.log() for process in instances)
    assert "Traceback" not in logs, logs


async def _collect(stream: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    return [message async for message in stream]
