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

from db.models import WebhookStatus
from webhooks.store import ClaimedEvent, RetryPolicy, claim_events, finish_events

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

ClaimEvents = Callable[[list[int], RetryPolicy], Awaitable[list[ClaimedEvent]]]
FinishEvents = Callable[[list[tuple[ClaimedEvent, WebhookStatus]]], Awaitable[None]]


class BatchFailed(RuntimeError):
    """The statement of the batch an item was in failed or was interrupted; the item's event is
    left as it was before, or holds a lease that lapses (the sweeper takes it then)."""


@dataclass(slots=True, eq=False)
class _Slot(Generic[T, R]):
    item: T
    # Its batch's result for it, or the batch's failure.
    outcome: asyncio.Future[R]


class Batched(Generic[T, R]):
    """`submit(item)` runs `run(items)` for the item and every other item waiting with it, one run at a
    time: the items submitted while a run is under way all go into the next one. `run` returns one
    result per item, in order.

    The runs are made by a task of their own, not by a submitter's: a submitter cancelled while its
    batch's statement runs (its job timed out, its worker is stopping) takes no other item's statement
    with it. Its own item is applied or not with its batch, as an item whose job was lost after its
    statement is: an event claimed for nobody holds a lease, which lapses for the sweeper."""

    def __init__(self, run: Callable[[list[T]], Awaitable[list[R]]], *, could_grow: Callable[[], bool]) -> None:
        self._run = run
        # Whether an item may still come to the next batch; the pause before it lasts only as long.
        self._could_grow = could_grow
        self._last_start = float("-inf")
        self._waiting: list[_Slot[T, R]] = []
        self._running: asyncio.Task[None] | None = None
        self._changed = asyncio.Event()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def reconsider(self) -> None:
        """What `could_grow` answers may have changed: a pause under way asks again."""
        self._changed.set()

    async def submit(self, item: T) -> R:
        (result,) = await self.submit_many([item])
        return result

    async def submit_many(self, items: list[T]) -> list[R]:
        """`submit` for several items at once (one job's events): their results, in order. If the
        statement of any of them failed, raises `BatchFailed` from its error; its items not yet taken
        by a statement are taken by none."""
        if not items:
            return []
        loop = asyncio.get_running_loop()
        slots: list[_Slot[T, R]] = [_Slot(item, loop.create_future()) for item in items]
        self._waiting.extend(slots)
        if self._running is None:
            # Scheduled after the tasks already ready: items submitted by tasks started together all
            # join the first batch instead of the first item running alone.
            self._running = asyncio.create_task(self._run_waiting(), name="webhooks:batches")
        try:
            # `wait`, not `gather`: a submitter that is cancelled leaves its items' outcomes alone.
            await asyncio.wait([slot.outcome for slot in slots])
        finally:
            for slot in slots:
                if not slot.outcome.done() and slot in self._waiting:
                    # Cancelled before its batch ran: no statement must take its event for nobody.
                    self._waiting.remove(slot)
        results: list[R] = []
        for slot in slots:
            error = slot.outcome.exception()
            if error is not None:
                raise BatchFailed(str(error)) from error
            results.append(slot.outcome.result())
        return results

    async def _run_waiting(self) -> None:
        try:
            while self._waiting:
                await self._pause()
                batch = self._waiting[:BATCH_LIMIT]
                del self._waiting[:BATCH_LIMIT]
                if batch:  # all of them may have been cancelled during the pause
                    await self._run_batch(batch)
        finally:
            self._running = None
            # Cancelled (the process is stopping): nothing is left waiting for a batch that will not run.
            stopped = BatchFailed("the batches stopped before this one ran")
            for slot in self._waiting:
                _fail(slot, stopped)
            self._waiting.clear()

    async def _pause(self) -> None:
        loop = asyncio.get_running_loop()
        pause = self._last_start + BATCH_SPACING_SECONDS - loop.time()
        if pause > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(pause):
                    while self._could_grow():
                        self._changed.clear()
                        await self._changed.wait()
        self._last_start = loop.time()

    async def _run_batch(self, batch: list[_Slot[T, R]]) -> None:
        try:
            results = await self._run([slot.item for slot in batch])
        except BaseException as error:
            for slot in batch:
                _fail(slot, error)
            if not isinstance(error, Exception):
                raise
            return
        for slot, result in zip(batch, results, strict=True):
            if not slot.outcome.done():
                slot.outcome.set_result(result)


def _fail(slot: _Slot[T, R], error: BaseException) -> None:
    if not slot.outcome.done():
        # A cancellation is told as a failure: the submitter is not the one cancelled.
        slot.outcome.set_exception(error if isinstance(error, Exception) else BatchFailed("the batch was interrupted"))
        # Retrieved here, so a submitter that is gone leaves no "never retrieved" warning.
        slot.outcome.exception()


@dataclass(slots=True, eq=False)
class AttemptsAtWork:
    """The attempts one `EventBatches.attempt` block counts as at work, until they end."""

    batches: EventBatches
    left: int

    def ended(self, events: int) -> None:
        """`events` of the block's attempts are over (their event unclaimed, or its failure recorded)."""
        self.left -= events
        self.batches._ended(events)


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
        self._claims: Batched[int, ClaimedEvent | None] = Batched(self._claim_batch, could_grow=self._any_at_work)
        self._finishes: Batched[tuple[ClaimedEvent, WebhookStatus], None] = Batched(
            self._finish_batch, could_grow=self._any_at_work
        )
        self._attempts = 0

    @asynccontextmanager
    async def attempt(self, events: int = 1) -> AsyncIterator[AttemptsAtWork]:
        """Around attempts at `events` events, from before their claim to their end however they
        end: while an attempt is at work (not waiting for a claim or a final status), a batch waits
        for it. Attempts that end earlier than the others (unclaimed, failed) say so (`ended`)."""
        at_work = AttemptsAtWork(self, events)
        self._attempts += events
        try:
            yield at_work
        finally:
            at_work.ended(at_work.left)

    def _any_at_work(self) -> bool:
        return self._attempts > self._claims.waiting + self._finishes.waiting

    def _reconsider(self) -> None:
        self._claims.reconsider()
        self._finishes.reconsider()

    def _ended(self, events: int) -> None:
        self._attempts -= events
        self._reconsider()

    async def claim(self, event_row_id: int) -> ClaimedEvent | None:
        """The event taken for one attempt, or None if it is final or another attempt holds it."""
        self._reconsider()  # heard once this submit has queued the event and yielded
        return await self._claims.submit(event_row_id)

    async def claim_many(self, event_row_ids: list[int]) -> list[ClaimedEvent | None]:
        """`claim` for each of the events (one job's), in order."""
        self._reconsider()
        return await self._claims.submit_many(event_row_ids)

    async def finish(self, row: ClaimedEvent, status: WebhookStatus) -> None:
        """The claimed event is PROCESSED or IGNORED."""
        self._reconsider()  # heard once this submit has queued the event and yielded
        await self._finishes.submit((row, status))

    async def finish_many(self, finished: list[tuple[ClaimedEvent, WebhookStatus]]) -> None:
        """`finish` for each of the claimed events (one job's)."""
        self._reconsider()
        await self._finishes.submit_many(finished)

    async def _claim_batch(self, event_row_ids: list[int]) -> list[ClaimedEvent | None]:
        claimed = {row.id: row for row in await self._claim_statement(sorted(set(event_row_ids)), self._policy)}
        # Two jobs of one event in one batch (a rerun queued while its job waited): one attempt takes it.
        return [claimed.pop(event_row_id, None) for event_row_id in event_row_ids]

    async def _finish_batch(self, finished: list[tuple[ClaimedEvent, WebhookStatus]]) -> list[None]:
        await self._finish_statement(finished)
        return [None] * len(finished)
