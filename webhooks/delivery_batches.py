"""Verified deliveries stored in batches, as a database commits a group: the deliveries that arrive
while one statement runs are all inserted by the next (`webhooks.store.store_deliveries`, one
`INSERT … ON CONFLICT DO NOTHING`), and the new ones' processing is offered to the job queue once for
the batch. Each delivery is acknowledged only after its batch's statement committed and its batch
was offered to the queue, so a 2xx still means "stored".

Under load this takes one statement and one enqueue for many deliveries instead of one each; a
delivery arriving alone is stored at once, with no pause to wait for company.

The batches run in a task of their own, not in a request's: a request that ends early (its client
went away) leaves the other deliveries' statement running; its own delivery is stored or not with its
batch, as a delivery whose answer was lost is, and the gateway's redelivery finds it stored.

Never here: verifying a delivery, or processing an event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from webhooks.store import VerifiedDelivery, store_deliveries

# Deliveries per statement: a statement's parameters (10 a row) and its batch's job stay small.
DELIVERIES_PER_STATEMENT = 64

# Each delivery's new row id, or None for a duplicate.
StoreDeliveries = Callable[[list[VerifiedDelivery]], Awaitable[list[int | None]]]
# Offers the processing of newly stored events to the job queue; never raises (the sweeper finds
# any event whose job was not queued).
OnStored = Callable[[list[int]], Awaitable[None]]


class StoringStopped(RuntimeError):
    """The process is shutting down: the delivery was not stored (the gateway will deliver it again)."""


class DeliveryBatches:
    """`store(delivery)`: the delivery's row id and True once stored, or None and False for a duplicate."""

    def __init__(
        self,
        on_stored: OnStored,
        *,
        store: StoreDeliveries = store_deliveries,
        limit: int = DELIVERIES_PER_STATEMENT,
    ) -> None:
        self._on_stored = on_stored
        self._store = store
        self._limit = limit
        self._waiting: list[tuple[VerifiedDelivery, asyncio.Future[tuple[int | None, bool]]]] = []
        self._storing: asyncio.Task[None] | None = None
        self._closed = False

    async def store(self, delivery: VerifiedDelivery) -> tuple[int | None, bool]:
        if self._closed:
            raise StoringStopped
        stored: asyncio.Future[tuple[int | None, bool]] = asyncio.get_running_loop().create_future()
        self._waiting.append((delivery, stored))
        if self._storing is None:
            self._storing = asyncio.create_task(self._store_waiting(), name="webhooks:store")
        return await stored

    async def _store_waiting(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self._limit]
                del self._waiting[: self._limit]
                await self._store_batch(batch)
        finally:
            self._storing = None
            # Cancelled at shutdown: nothing is left waiting for a batch that will not run.
            for _, stored in self._waiting:
                stored.cancel()
            self._waiting.clear()

    async def _store_batch(self, batch: list[tuple[VerifiedDelivery, asyncio.Future[tuple[int | None, bool]]]]) -> None:
        try:
            row_ids = await self._store([delivery for delivery, _ in batch])
        except BaseException as error:
            for _, stored in batch:
                if not stored.done():
                    # Each waiting request raises the statement's own error (a busy pool answers 503).
                    stored.set_exception(error if isinstance(error, Exception) else StoringStopped())
                    # Retrieved here, so a request that is gone leaves no "never retrieved" warning.
                    stored.exception()
            if not isinstance(error, Exception):
                raise
            return
        created = [row_id for row_id in row_ids if row_id is not None]
        try:
            if created:
                await self._on_stored(created)
        finally:
            # Stored, whatever became of the offer (cancelled at shutdown: the sweeper queues them).
            for (_, stored), row_id in zip(batch, row_ids, strict=True):
                if not stored.done():
                    stored.set_result((row_id, row_id is not None))

    async def aclose(self) -> None:
        """Store nothing more; the batch under way finishes, so its acknowledgements hold."""
        self._closed = True
        if self._storing is not None:
            await asyncio.shield(self._storing)
