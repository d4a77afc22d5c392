"""Stored events' claims and final statuses taken in batches: while one statement runs (and under load
for a short pause after it started), the events that concurrent jobs bring wait, and the next statement
takes all of them at once. Each statement's cost is mostly its own, not its rows': on PostgreSQL the
claim and the final status cost 0.69 ms of CPU an event one by one, 0.18 ms in batches of five.

Each job still works on one event (its attempt, its failure, its retry and its metrics are its own);
only the two statements every attempt runs, the claim and the final status, are shared. A batch's
statement claims or finishes every event in it or none; an event's failure is never a batch's.

Never here: processing an event, or an event's failure (`webhooks.processing` and `webhooks.store`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from db.models import WebhookEvent, WebhookStatus
from webhooks.store import RetryPolicy, claim_events, finish_events

T = TypeVar("T")
R = TypeVar("R")

# Events per statement, so that a statement's parameters and its rows stay small.
BATCH_LIMIT = 100
# The least time between the starts of two statements of a kind. A statement takes a millisecond or
# two, and under load events arrive a few milliseconds apart: without a pause nearly every batch holds
# one event. A statement after a quiet spell runs at once; under load each waits for the rest of the
# pause and takes every event that came meanwhile, so a busy process runs at most 1/SPACING of each.
# The pause ends early once every attempt of the process is waiting for a statement: no event can
# join the batch then, and waiting on would only cap the process at its jobs / (2 * SPACING) events a
# second (250 for a worker's 10 jobs, whatever its CPU could do).
BATCH_SPACING_SECONDS = 0.02

ClaimEvents = Callable[[list[int], RetryPolicy], Awaitable[list[WebhookEvent]]]
FinishEvents = Callable[[list[tuple[WebhookEvent, WebhookStatus]]], Awaitable[None]]


class BatchFailed(RuntimeError):
    """The statement of the batch an item was in failed or was interrupted; the item's event is
    left as it was before, or holds a lease that lapses (the sweeper takes it then)."""


@dataclass(slots=True, eq=False)
class _Slot(Generic[T, R]):
    item: T
    # Set once its batch ran: its result (in a tuple, as a result may be None) or the batch's error.
    result: tuple[R] | None = None
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


class Batched(Generic[T, R]):
    """`submit(item)` runs `run(items)` for the item and every other item waiting with it, one run at a
    time: the items submitted while a run is under way all go into the next one. `run` returns one
    result per item, in order."""

    def __init__(self, run: Callable[[list[T]], Awaitable[list[R]]], *, could_grow: Callable[[], bool]) -> None:
        self._run = run
        # Whether an item may still come to the next batch; the pause before it lasts only as long.
        self._could_grow = could_grow
        self._last_start = float("-inf")
        self._waiting: list[_Slot[T, R]] = []
        self._turn = asyncio.Lock()
        self._changed = asyncio.Event()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def reconsider(self) -> None:
        """What `could_grow` answers may have changed: a pause under way asks again."""
        self._changed.set()

    async def submit(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        self._waiting.append(slot)
        try:
            # Whoever holds the turn runs the next batch for everybody waiting; the others find their
            # result when their turn comes, or run the batch their item is in.
            while not slot.done:
                async with self._turn:
                    if not slot.done:
                        await self._run_next()
        finally:
            if not slot.done and slot in self._waiting:
                # Cancelled before its batch ran: no statement must take its event for nobody.
                self._waiting.remove(slot)
        if slot.result is None:
            raise BatchFailed(str(slot.error)) from slot.error
        return slot.result[0]

    async def _run_next(self) -> None:
        loop = asyncio.get_running_loop()
        pause = self._last_start + BATCH_SPACING_SECONDS - loop.time()
        if pause > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    while self._could_grow():
                        self._changed.clear()
                        await self._changed.wait()
        self._last_start = loop.time()
        batch = self._waiting[:BATCH_LIMIT]
        del self._waiting[:BATCH_LIMIT]
        try:
            results = await self._run([slot.item for slot in batch])
        except BaseException as error:
            for slot in batch:
                slot.error = error
            raise
        for slot, result in zip(batch, results, strict=True):
            slot.result = (result,)


class EventBatches:
    """This process's claims and final statuses of stored events, each a statement per batch."""

    def __init__(
        self,
        policy: RetryPolicy,
        *,
        claim: ClaimEvents = claim_events,
        finish: FinishEvents = finish_events,
    ) -> None:
        self._policy = policy
        self._claim_statement = claim
        self._finish_statement = finish
        self._claims: Batched[int, WebhookEvent | None] = Batched(self._claim_batch, could_grow=self._any_at_work)
        self._finishes: Batched[tuple[WebhookEvent, WebhookStatus], None] = Batched(
            self._finish_batch, could_grow=self._any_at_work
        )
        self._attempts = 0

    @asynccontextmanager
    async def attempt(self) -> AsyncIterator[None]:
        """Around one attempt at an event, from before its claim to its end however it ends: while
        an attempt is at work (not waiting for a claim or a final status), a batch waits for it."""
        self._attempts += 1
        try:
            yield
        finally:
            self._attempts -= 1
            self._reconsider()

    def _any_at_work(self) -> bool:
        return self._attempts > self._claims.waiting + self._finishes.waiting

    def _reconsider(self) -> None:
        self._claims.reconsider()
        self._finishes.reconsider()

    async def claim(self, event_row_id: int) -> WebhookEvent | None:
        """The event taken for one attempt, or None if it is final or another attempt holds it."""
        self._reconsider()  # heard once this submit has queued the event and yielded
        return await self._claims.submit(event_row_id)

    async def finish(self, row: WebhookEvent, status: WebhookStatus) -> None:
        """The claimed event is PROCESSED or IGNORED."""
        self._reconsider()  # heard once this submit has queued the event and yielded
        await self._finishes.submit((row, status))

    async def _claim_batch(self, event_row_ids: list[int]) -> list[WebhookEvent | None]:
        claimed = {row.id: row for row in await self._claim_statement(sorted(set(event_row_ids)), self._policy)}
        # Two jobs of one event in one batch (a rerun queued while its job waited): one attempt takes it.
        return [claimed.pop(event_row_id, None) for event_row_id in event_row_ids]

    async def _finish_batch(self, finished: list[tuple[WebhookEvent, WebhookStatus]]) -> list[None]:
        await self._finish_statement(finished)
        return [None] * len(finished)
