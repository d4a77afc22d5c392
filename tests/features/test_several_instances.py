"""Two PayQL processes on one PostgreSQL and Redis: subscribers on both see a payment made through
one of them, and each process holds exactly one Redis pub/sub connection."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from payql.settings import Settings
from tests.backends import Backend
from tests.ports import free_port
from tests.processes import PayQLProcess
from tests.testkit import (
    CHECKOUT,
    PAY_ORDER,
    TEST_DATA_KEY_ENV,
    TEST_JWT_SECRET,
    TEST_WEBHOOK_SECRET,
    Shopper,
    checkout_input,
    make_price,
    new_key,
)
from tests.wsclient import graphql_ws

ORDER_STATUS = "subscription($id: ID!) { orderStatus(orderId: $id) { id status } }"
WAIT = 30.0


@pytest.fixture
async def second_instance(
    backend: Backend, server_settings: Settings, server: str, tmp_path: Path
) -> AsyncIterator[str]:
    """`payql serve` in a process of its own, on the session's database and Redis prefix."""
    if backend.redis_url is None:
        pytest.skip("the embedded backend is one process by design; PAYQL_TEST_BACKEND=servers runs two")
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        "PAYQL_ENVIRONMENT": "development",
        "PAYQL_DATABASE_URL": backend.database_url,
        "PAYQL_REDIS_URL": backend.redis_url,
        "PAYQL_REDIS_KEY_PREFIX": backend.redis_prefix,
        "PAYQL_PORT": str(port),
        "PAYQL_PUBLIC_BASE_URL": base_url,
        "PAYQL_JWT_SECRET": TEST_JWT_SECRET,
        "PAYQL_SANDBOX_STATE_PATH": str(tmp_path / "sandbox.sqlite3"),
        "PAYQL_SANDBOX_WEBHOOK_SECRETS": TEST_WEBHOOK_SECRET,
        "PAYQL_MAILBOX_PATH": str(tmp_path / "mailbox"),
        "PAYQL_PAYMENT_RATE_LIMIT": server_settings.payment_rate_limit,
        "PAYQL_SWEEP_INTERVAL_SECONDS": "0",
        "PAYQL_RECONCILE_INTERVAL_SECONDS": "0",
        "PAYQL_DUNNING_INTERVAL_SECONDS": "0",
    } | TEST_DATA_KEY_ENV
    process = PayQLProcess(env, tmp_path / "second.log", "serve")
    process.start()
    try:
        await process.wait_healthy(base_url)
        yield base_url
    finally:
        process.stop()


async def pubsub_connections(redis_url: str, name: str) -> int:
    admin = Redis.from_url(redis_url)
    try:
        return sum(1 for client in await admin.client_list() if client.get("name") == name)
    finally:
        await admin.aclose()


async def next_status(stream: AsyncIterator[dict[str, Any]]) -> str:
    message = await asyncio.wait_for(anext(stream), WAIT)
    status: str = message["payload"]["data"]["orderStatus"]["status"]
    return status


async def statuses_until_paid(stream: AsyncIterator[dict[str, Any]]) -> list[str]:
    statuses = [await next_status(stream)]
    while statuses[-1] != "PAID":
        statuses.append(await next_status(stream))
    return statuses


async def test_subscribers_on_both_instances_see_a_payment_made_through_one(
    backend: Backend, server: str, second_instance: str, shopper: Shopper
) -> None:
    assert backend.redis_url is not None
    price = await make_price(1300)
    declined = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_chargeDeclined")}))["checkout"]
    order_id = declined["order"]["id"]
    async with graphql_ws(server, shopper.token) as on_a, graphql_ws(second_instance, shopper.token) as on_b:
        stream_a = on_a.subscribe(ORDER_STATUS, {"id": order_id})
        stream_b = on_b.subscribe(ORDER_STATUS, {"id": order_id})
        assert await next_status(stream_a) == "PENDING"
        assert await next_status(stream_b) == "PENDING"
        # One pub/sub connection per process, under the same name: this process's and the other's.
        assert await pubsub_connections(backend.redis_url, f"{backend.redis_prefix}pubsub") == 2

        async with httpx.AsyncClient(base_url=second_instance, timeout=WAIT) as other:
            pay = {"orderId": order_id, "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}
            paid = await Shopper(other, shopper.subject).data(PAY_ORDER, {"input": pay})
        assert paid["payOrder"]["order"]["status"] == "PAID"
        assert (await statuses_until_paid(stream_a))[-1] == "PAID"  # made through B, seen on A
        assert (await statuses_until_paid(stream_b))[-1] == "PAID"
