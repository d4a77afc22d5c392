"""Coalescing: concurrent calls for one key share one run of the work, in this process.

The first caller starts the work in its own task; callers arriving while it runs await the same
result (or exception). A caller that gives up (cancelled) does not cancel the work for the others.
The key is forgotten as soon as the work ends, so a later call runs the work again: this is not a
cache and never serves a stale answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Hashable
from typing import Any, Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class SingleFlight(Generic[K, V]):
    def __init__(self) -> None:
        self._running: dict[K, asyncio.Task[V]] = {}

    async def run(self, key: K, work: Callable[[], Coroutine[Any, Any, V]]) -> V:
        task = self._running.get(key)
        if task is None:
            task = asyncio.create_task(work())
            self._running[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        return await asyncio.shield(task)

    def _forget(self, key: K, done: asyncio.Task[V]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        if not done.cancelled():
            # Retrieved so an error nobody awaited any more (all callers gone) is not reported as lost.
            done.exception()
