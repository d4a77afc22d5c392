"""The server dies with SIGKILL after the gateway charged and before PayQL committed the result.

A real `payql serve` subprocess is frozen at that point by a fault point, killed, and restarted.
The sandbox (its state on disk, like a real processor) then delivers the webhook it never got an
answer for, and reconciliation stands by: the order ends paid with exactly one charge and one
receipt, and a client retry with the same idempotency key finds the same order.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from gateways.sandbox.processor import SandboxProcessor
from tests.backends import Backend, create_backend, destroy_backend
from tests.db.test_migrations import raw
from tests.ports import free_port
from tests.processes import PayQLProcess, cli
from tests.smtp_server import SmtpServer
from tests.testkit import (
    CHECKOUT,
    TEST_DATA_KEY_ENV,
    TEST_JWT_SECRET,
    TEST_WEBHOOK_SECRET,
    email_of,
    new_key,
    token_for,
)

ORDERS = (
    "{ orders(first: 10) { edges { node { id status total { amount } payments { id status gatewayReference } } } } }"
)


@pytest.fixture
async def isolated_backend(tmp_path: Path) -> AsyncIterator[Backend]:
    backend = await create_backend(tmp_path)
    yield backend
    await destroy_backend(backend)


async def graphql(base_url: str, subject: str, query: str, variables: dict | None = None) -> dict:  # type: ignore[type-arg]
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        response = await client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"authorization": f"Bearer {token_for(subject)}"},
        )
        result: dict = response.json()  # type: ignore[type-arg]
        return result


async def test_sigkill_between_gateway_success_and_commit_loses_nothing(
    tmp_path: Path, isolated_backend: Backend
) -> None:
    mail = SmtpServer()
    await mail.start()
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    marker = tmp_path / "fault-reached"
    env = {
        "PAYQL_ENVIRONMENT": "development",
        "PAYQL_DATABASE_URL": isolated_backend.database_url,
        "PAYQL_PORT": str(port),
        "PAYQL_PUBLIC_BASE_URL": base_url,
        "PAYQL_JWT_SECRET": TEST_JWT_SECRET,
        "PAYQL_SANDBOX_STATE_PATH": str(tmp_path / "sandbox.sqlite3"),
        "PAYQL_SANDBOX_WEBHOOK_SECRETS": TEST_WEBHOOK_SECRET,
        "PAYQL_SMTP_HOST": "127.0.0.1",
        "PAYQL_SMTP_PORT": str(mail.port),
        "PAYQL_SMTP_STARTTLS": "false",
        "PAYQL_IDEMPOTENCY_LEASE_SECONDS": "1",
        "PAYQL_SWEEP_INTERVAL_SECONDS": "1",
        "PAYQL_SWEEP_GRACE_SECONDS": "1",
        "PAYQL_RECONCILE_INTERVAL_SECONDS": "0",
        "PAYQL_FAULT_MARKER_PATH": str(marker),
    } | TEST_DATA_KEY_ENV
    if isolated_backend.redis_url:
        env |= {"PAYQL_REDIS_URL": isolated_backend.redis_url, "PAYQL_REDIS_KEY_PREFIX": isolated_backend.redis_prefix}
    await cli(env, "migrate")
    await cli(env, "seed-demo")
    worker = PayQLProcess(env, tmp_path / "worker.log", "worker") if isolated_backend.redis_url else None
    first = PayQLProcess(env | {"PAYQL_FAULT_POINT": "after_gateway_charge"}, tmp_path / "first.log", "serve")
    second = PayQLProcess(env, tmp_path / "second.log", "serve")
    subject = f"crash-{uuid.uuid4().hex[:8]}"
    try:
        if worker is not None:
            worker.start()
        first.start()
        await first.wait_healthy(base_url)
        products = await graphql(base_url, subject, "{ products { prices { id unitAmount { currency } } } }")
        price_id = next(
            p["id"]
            for product in products["data"]["products"]
            for p in product["prices"]
            if p["unitAmount"]["currency"] == "USD"
        )
        key = new_key()
        variables = {
            "input": {"items": [{"priceId": price_id}], "paymentMethod": "pm_card_visa", "idempotencyKey": key}
        }
        attempt = asyncio.create_task(graphql(base_url, subject, CHECKOUT, variables))
        await asyncio.wait_for(_until(marker.exists), 30)
        first.kill()
        with pytest.raises(httpx.TransportError):
            await attempt

        second.start()
        await second.wait_healthy(base_url)

        async def paid() -> bool:
            edges = (await graphql(base_url, subject, ORDERS))["data"]["orders"]["edges"]
            return len(edges) == 1 and edges[0]["node"]["status"] == "PAID"

        await asyncio.wait_for(_until_async(paid), 60)
        retried = (await graphql(base_url, subject, CHECKOUT, variables))["data"]["checkout"]
        edges = (await graphql(base_url, subject, ORDERS))["data"]["orders"]["edges"]
        assert len(edges) == 1
        order = edges[0]["node"]
        assert retried["order"]["id"] == order["id"] and retried["userErrors"] == []
        assert [p["status"] for p in order["payments"]] == ["PAID"]
        await asyncio.wait_for(_until(lambda: len(mail.messages_to(email_of(subject))) >= 1), 30)
        # A wrong second receipt would be a second outbox row, or the first one sent again: wait until
        # the outbox has sent everything, then count.
        await asyncio.wait_for(_until_async(lambda: _outbox_sent(isolated_backend.database_url)), 30)
        assert len(mail.messages_to(email_of(subject))) == 1
        async with raw(isolated_backend.database_url) as db:
            receipts = await db.fetch("SELECT payload FROM outbox_messages WHERE kind = 'receipt'")
        assert [json.loads(payload) if isinstance(payload, str) else payload for (payload,) in receipts] == [
            {"order_id": order["id"]}
        ]
    finally:
        for process in (first, second, worker):
            if process is not None:
                process.stop()
        await mail.stop()

    processor = SandboxProcessor(state_path=tmp_path / "sandbox.sqlite3")
    await processor.open()
    try:
        intents = [i for i in await processor.list_payment_intents() if i.metadata.get("payql_order_id") == order["id"]]
    finally:
        await processor.aclose()
    total = order["total"]["amount"]
    assert [(i.id, i.amount_received) for i in intents] == [(order["payments"][0]["gatewayReference"], total)]


async def _outbox_sent(database_url: str) -> bool:
    async with raw(database_url) as db:
        waiting = await db.fetch("SELECT COUNT(*) FROM outbox_messages WHERE status <> 'SENT'")
    return bool(waiting == [(0,)])


async def _until(condition) -> None:  # type: ignore[no-untyped-def]
    while not condition():
        await asyncio.sleep(0.05)


async def _until_async(condition) -> None:  # type: ignore[no-untyped-def]
    while not await condition():
        await asyncio.sleep(0.2)
