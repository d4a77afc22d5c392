"""The event table is the truth: jobs lost with Redis (stopped mid-run, or flushed) are found again
by the sweeper, and every stored event ends processed. Runs on a throwaway redis-server."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from db.models import Order, Payment, WebhookEvent
from gateways.sandbox.processor import SandboxProcessor
from gateways.types import VerifiedEvent, WebhookDelivery
from jobs.definitions import JobContext
from jobs.saq_queue import SaqJobQueue
from payql.wiring import Services
from tests.jobs.conftest import RedisServer
from tests.jobs.saqkit import NAME, running_worker
from tests.testkit import (
    CHECKOUT,
    Shopper,
    checkout_input,
    eventually,
    make_price,
    sandbox_webhooks_held,
)
from webhooks.store import store_delivery


@pytest.fixture
def faults(sandbox: SandboxProcessor) -> Iterator[SandboxProcessor]:
    yield sandbox
    sandbox.clear_faults()


@pytest.fixture
async def held(services: Services) -> AsyncIterator[None]:
    async with sandbox_webhooks_held(services):
        yield


async def stored_success_event(shopper: Shopper, sandbox: SandboxProcessor) -> tuple[WebhookEvent, Payment]:
    """A charge whose answer was lost, and its success event stored as if the process died right
    after the insert and before the enqueue."""
    price = await make_price(3300)
    sandbox.arm_fault("timeout", 1)
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    payment = await Payment.get(id=result["payment"]["id"])
    event = next(
        e
        for e in await sandbox.list_events()
        if e["type"] == "payment_intent.succeeded"
        and e["data"]["object"]["metadata"].get("payql_payment_id") == str(payment.id)
    )
    body = json.dumps(event).encode()
    row, created = await store_delivery(
        "sandbox",
        VerifiedEvent(event["id"], event["type"], event["created"], event),
        WebhookDelivery({}, body, int(time.time())),
        "127.0.0.1",
    )
    assert created
    return row, payment


def jobs_on(services: Services, redis: RedisServer) -> tuple[JobContext, SaqJobQueue]:
    context = dataclasses.replace(services.jobs, queue=None)
    queue = SaqJobQueue(redis.url, context.specs(), name=NAME)
    context.queue = queue
    return context, queue


async def test_events_stored_while_redis_is_down_are_processed_after_the_sweep(
    shopper: Shopper, faults: SandboxProcessor, held: None, services: Services, redis_server: RedisServer
) -> None:
    context, queue = jobs_on(services, redis_server)
    await queue.start()
    try:
        async with running_worker(redis_server.url, context.specs()):
            row, payment = await stored_success_event(shopper, faults)
            redis_server.stop()
            # The enqueue after the insert fails with Redis gone; it must not raise into the request.
            await queue.enqueue("process_webhook_event", key=f"webhook:{row.id}", event_row_id=row.id)
            assert (await WebhookEvent.get(id=row.id)).status == "RECEIVED"
            redis_server.start()
            await context.sweep()
            await eventually(lambda: _processed(row.id), timeout=30)
    finally:
        await queue.aclose()
    assert (await Order.get(id=payment.order_id)).status == "PAID"


async def test_a_flushed_queue_loses_nothing_once_the_sweeper_runs(
    shopper: Shopper, faults: SandboxProcessor, held: None, services: Services, redis_server: RedisServer
) -> None:
    context, queue = jobs_on(services, redis_server)
    await queue.start()
    try:
        row, payment = await stored_success_event(shopper, faults)
        await queue.enqueue("process_webhook_event", key=f"webhook:{row.id}", event_row_id=row.id)
        redis_server.flushall()  # the queued job is gone before any worker saw it
        async with running_worker(redis_server.url, context.specs()):
            await asyncio.sleep(0.5)
            assert (await WebhookEvent.get(id=row.id)).status == "RECEIVED"
            await context.sweep()
            await eventually(lambda: _processed(row.id), timeout=30)
    finally:
        await queue.aclose()
    assert (await Order.get(id=payment.order_id)).status == "PAID"


async def _processed(row_id: int) -> bool:
    return (await WebhookEvent.get(id=row_id)).status == "PROCESSED"
