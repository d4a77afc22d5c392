"""Verified deliveries stored in batches (`webhooks.delivery_batches`): the deliveries that arrive
while a statement runs are stored by the next one and queued as one job; each is answered only once
stored; a request that ends early takes no other delivery with it.

A batch is formed by holding the statement before it (`HeldStore`): the deliveries sent meanwhile
queue behind it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field

import httpx
import pytest
from asyncpg.exceptions import TooManyConnectionsError
from starlette.applications import Starlette

from db.models import WebhookEvent, WebhookStatus
from gateways.types import VerifiedEvent, WebhookDelivery
from payql.wiring import Services
from tests.database_held import BOUND_SECONDS
from tests.testkit import settle
from tests.webhooks.conftest import post_event
from webhooks.delivery_batches import DeliveryBatches, StoringStopped
from webhooks.endpoint import webhook_routes
from webhooks.store import VerifiedDelivery, store_deliveries


def verified(event_id: str | None = None) -> VerifiedDelivery:
    event_id = event_id or f"evt_batch_{uuid.uuid4().hex}"
    body = json.dumps({"id": event_id, "type": "batch.test", "data": {}}).encode()
    return VerifiedDelivery(
        gateway="sandbox",
        event=VerifiedEvent(event_id, "batch.test", int(time.time()), {}),
        delivery=WebhookDelivery(headers={"content-type": "application/json"}, body=body, received_at=int(time.time())),
        source_ip="203.0.113.9",
    )


@dataclass
class HeldStore:
    """The batches' statement, counted with the events each stored; the first one is held until
    `release` is set, or fails with `fail_with`."""

    fail_with: BaseException | None = None
    batches: list[list[str]] = field(default_factory=list)
    storing: asyncio.Event = field(default_factory=asyncio.Event)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def store(self, deliveries: list[VerifiedDelivery]) -> list[int | None]:
        self.batches.append([delivery.event.event_id for delivery in deliveries])
        if len(self.batches) == 1:
            self.storing.set()
            await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return await store_deliveries(deliveries)


@dataclass
class Queued:
    jobs: list[list[int]] = field(default_factory=list)

    async def __call__(self, event_row_ids: list[int]) -> None:
        self.jobs.append(event_row_ids)


async def test_deliveries_arriving_during_a_statement_are_stored_by_the_next_and_queued_as_one_job(
    services: Services,
) -> None:
    store, queued = HeldStore(), Queued()
    batches = DeliveryBatches(queued, store=store.store)
    first = asyncio.create_task(batches.store(verified()))
    await store.storing.wait()
    later = [verified() for _ in range(3)]
    duplicate_of_later = verified(later[0].event.event_id)
    waiting = [asyncio.create_task(batches.store(one)) for one in [*later, duplicate_of_later]]
    await asyncio.sleep(0)  # each waiting delivery has joined the batch: tasks run in creation order
    assert not any(task.done() for task in [first, *waiting])  # none is answered before it is stored
    store.release.set()
    answers = await asyncio.gather(first, *waiting)

    assert [len(batch) for batch in store.batches] == [1, 4]
    assert [created for _, created in answers] == [True, True, True, True, False]
    stored_ids = [row_id for row_id, _ in answers]
    assert queued.jobs == [stored_ids[:1], stored_ids[1:4]]
    rows = await WebhookEvent.filter(id__in=stored_ids[:4]).order_by("id")
    assert [row.event_id for row in rows] == [store.batches[0][0], *(one.event.event_id for one in later)]
    assert {row.status for row in rows} == {WebhookStatus.RECEIVED}


async def test_a_request_that_ends_during_its_batch_leaves_the_others_stored(services: Services) -> None:
    store, queued = HeldStore(), Queued()
    batches = DeliveryBatches(queued, store=store.store)
    first = asyncio.create_task(batches.store(verified()))
    await store.storing.wait()
    gone_delivery, kept_delivery = verified(), verified()
    gone = asyncio.create_task(batches.store(gone_delivery))
    kept = asyncio.create_task(batches.store(kept_delivery))
    await asyncio.sleep(0)
    first.cancel()  # the request holding the first batch's statement ends (its client went away)
    gone.cancel()
    store.release.set()
    (kept_id, created) = await kept
    assert created
    # Both batches ran: the cancelled requests' deliveries are stored as if their answers were lost.
    await batches.aclose()
    assert [len(batch) for batch in store.batches] == [1, 2]
    assert await WebhookEvent.filter(event_id=gone_delivery.event.event_id).exists()
    assert await WebhookEvent.filter(event_id=store.batches[0][0]).exists()
    assert kept_id in queued.jobs[1]
    for task in (first, gone):
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_failed_statement_fails_every_delivery_of_its_batch_with_its_own_error(services: Services) -> None:
    store, queued = HeldStore(fail_with=TooManyConnectionsError("too many clients")), Queued()
    batches = DeliveryBatches(queued, store=store.store)
    first = asyncio.create_task(batches.store(verified()))
    await store.storing.wait()
    second = asyncio.create_task(batches.store(verified()))
    await asyncio.sleep(0)
    store.release.set()
    # Its own error, not a wrapper: the retry-later middleware answers a busy database with 503.
    for task in (first, second):
        with pytest.raises(TooManyConnectionsError):
            await task
    assert queued.jobs == []
    store.fail_with = None
    assert (await batches.store(verified()))[1]  # the next delivery is stored again


async def test_after_shutdown_nothing_more_is_stored(services: Services) -> None:
    queued = Queued()
    batches = DeliveryBatches(queued)
    assert (await batches.store(verified()))[1]
    await batches.aclose()
    delivery = verified()
    with pytest.raises(StoringStopped):
        await batches.store(delivery)
    assert not await WebhookEvent.filter(event_id=delivery.event.event_id).exists()


async def test_concurrent_deliveries_through_the_endpoint_are_each_stored_once_and_processed(
    http: httpx.AsyncClient, services: Services
) -> None:
    events = [
        {"id": f"evt_many_{uuid.uuid4().hex}", "object": "event", "type": "many.test", "created": int(time.time())}
        for _ in range(12)
    ]
    # Every event twice at once: each is stored once, whichever batch its copies land in.
    answers = await asyncio.gather(*(post_event(http, event) for event in events + events))
    assert [answer.status_code for answer in answers] == [200] * 24
    assert sorted(answer.json()["duplicate"] for answer in answers) == [False] * 12 + [True] * 12
    await settle(services)
    rows = await WebhookEvent.filter(event_id__in=[event["id"] for event in events])
    assert len(rows) == 12
    assert {row.status for row in rows} == {WebhookStatus.IGNORED}


async def test_deliveries_stored_while_their_job_is_being_queued_are_answered_even_if_shutdown_cuts_the_queueing(
    services: Services,
) -> None:
    queueing, never = asyncio.Event(), asyncio.Event()

    async def queue_that_hangs(event_row_ids: list[int]) -> None:
        queueing.set()
        await never.wait()

    batches = DeliveryBatches(queue_that_hangs)
    delivery = verified()
    request = asyncio.create_task(batches.store(delivery))
    await queueing.wait()
    (storing,) = [task for task in asyncio.all_tasks() if task.get_name() == "webhooks:store"]
    storing.cancel()  # the process shutting down mid-offer
    # Bounded: before, the request waited forever for an answer no one would give.
    row_id, created = await asyncio.wait_for(asyncio.shield(request), BOUND_SECONDS)
    assert created
    assert (await WebhookEvent.get(id=row_id)).event_id == delivery.event.event_id


async def test_a_delivery_arriving_after_shutdown_began_is_refused_with_503_and_not_stored(
    services: Services,
) -> None:
    closed = DeliveryBatches(Queued())
    await closed.aclose()
    app = Starlette(routes=webhook_routes(gateways=lambda: services.deps.gateways, deliveries=lambda: closed))
    event = {"id": f"evt_late_{uuid.uuid4().hex}", "object": "event", "type": "late.test", "created": int(time.time())}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://payql") as client:
        answer = await post_event(client, event)
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "1")
    assert not await WebhookEvent.filter(event_id=event["id"]).exists()
