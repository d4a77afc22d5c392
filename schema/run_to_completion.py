"""RunToCompletion: once a mutation has started, it runs to its end whatever happens to its caller.

A websocket client can cancel an operation (`complete`) or go away mid-mutation, and a server
shutdown cancels what is still being served. Money-moving work must not be torn in half by that:
each mutation resolver runs in a task of its own that the caller's cancellation does not reach, so
its unit of work ends as it would have, and its result is stored with its idempotency key for the
client's retry to replay. The tasks are tracked: shutdown waits for them (`finish_mutations`)
before it closes the database.

Never here: anything that decides what a mutation does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.types import Info

logger = logging.getLogger(__name__)

# How long shutdown waits for the mutations it had to cancel after the grace period (their
# transactions roll back at once; this only bounds a stuck one).
_CANCELLED_WAIT_SECONDS = 5.0

_running: set[asyncio.Task[Any]] = set()


class RunToCompletion(FieldExtension):
    """Applied to every Mutation field by the schema assembly, last: the outermost extension, so the
    whole field (its error mapping too) runs in the task."""

    async def resolve_async(
        self, next_: Callable[..., Awaitable[Any]], source: Any, info: Info[Any, Any], **kwargs: Any
    ) -> Any:
        async def resolve() -> Any:
            return await next_(source, info, **kwargs)

        task = asyncio.ensure_future(resolve())
        _running.add(task)
        task.add_done_callback(_running.discard)
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            # The caller left; the mutation goes on, and what it kept is replayed to a retry.
            task.add_done_callback(_log_unseen_failure)
            raise


def _log_unseen_failure(task: asyncio.Task[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("A mutation whose caller had left failed", exc_info=task.exception())


def running_mutations() -> int:
    return len(_running)


async def finish_mutations(grace_seconds: float) -> int:
    """Wait up to `grace_seconds` for the mutations still running; cancel what is left after that
    (their transactions roll back; their idempotency leases let a retry resume them). Returns how
    many had to be cancelled."""
    if not _running:
        return 0
    logger.info("Waiting up to %ss for %d running mutations", grace_seconds, len(_running))
    _, late = await asyncio.wait(set(_running), timeout=grace_seconds)
    if not late:
        return 0
    logger.warning("Cancelling %d mutations still running after %ss", len(late), grace_seconds)
    for task in late:
        task.cancel()
    await asyncio.wait(late, timeout=_CANCELLED_WAIT_SECONDS)
    return len(late)
