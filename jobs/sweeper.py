"""The sweeper: finds stored work whose job was lost and queues it again.

It makes the database, not the queue, the source of truth: a Redis restart, a flushed queue or a
process killed between commit and enqueue delays work by one sweep interval and loses nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from jobs.queue import JobQueue
from webhooks.store import due_event_ids

logger = logging.getLogger(__name__)

DueIds = Callable[[], Awaitable[list[int]]]


async def sweep_once(queue: JobQueue, *, webhook_grace_seconds: float, due_outbox_ids: DueIds) -> int:
    """Queue every due webhook event and outbox message; returns how many were queued."""
    queued = 0
    for event_id in await due_event_ids(webhook_grace_seconds):
        await queue.enqueue("process_webhook_event", key=f"webhook:{event_id}", event_row_id=event_id)
        queued += 1
    for message_id in await due_outbox_ids():
        await queue.enqueue("dispatch_outbox_message", key=f"outbox:{message_id}", message_id=message_id)
        queued += 1
    if queued:
        logger.info("sweeper queued %d lost or due jobs", queued)
    return queued
