"""The one watch-a-row loop behind every live stream (order status, subscription status).

A row's stream is the current state first, then every change, ending on a final state. Each
process runs at most one watch per row, however many subscribers it has: the watch subscribes to
the row's channel before its first read (so no change between the read and the subscription is
lost), re-reads the row once per hint (never trusting the message), and hands each new version to
every subscriber's bounded queue: the same object to each of them, so that whatever is built from
one version can be built once for all. A subscriber that leaves that many versions unread is
dropped with a RATE_LIMITED error rather than holding the process's memory; the others carry on.

A transport may take a subscriber's versions from its queue itself (`DirectLane`), to send a
version whose frame is already built without a pass through the subscriber's generators; whatever it
takes and cannot send that way it gives back, and the stream yields it next, in order.

Authorization is not done here: the caller checks that the subscriber may see the row before
joining. Nothing here writes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Hashable
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from resolvers.errors import ErrorCode, UseCaseError

Row = TypeVar("Row")
Subscribe = Callable[[str], AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]]

TOO_SLOW_MESSAGE = "Live updates were not read fast enough and stopped. Subscribe again."


@dataclass(frozen=True)
class WatchedRow(Generic[Row]):
    """How to watch one row: its channel, how to read it, what counts as a new version, when to stop."""

    channel: str
    read: Callable[[], Awaitable[Row]]
    version: Callable[[Row], Hashable]
    is_final: Callable[[Row], bool]


class _End:
    """Queued after the final version, or with the error that stopped the watch."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class _Watcher(Generic[Row]):
    def __init__(self, queue_size: int) -> None:
        self.queue: asyncio.Queue[Row | _End] = asyncio.Queue(maxsize=queue_size)
        self.too_slow = False
        self.given_back: Row | _End | None = None  # taken by a `DirectLane`, to be yielded next

    def offer(self, item: Row | _End) -> None:
        if self.too_slow:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.too_slow = True


class _Watch(Generic[Row]):
    """One row's shared loop and its local subscribers."""

    def __init__(self, row: WatchedRow[Row], subscribe: Subscribe, on_idle: Callable[[], None]) -> None:
        self.row = row
        self.watchers: set[_Watcher[Row]] = set()
        self.latest: Row | None = None
        self.reads = 0  # database reads made for every subscriber together
        self._subscribe = subscribe
        self._on_idle = on_idle
        self.task = asyncio.create_task(self._run(), name=f"live-stream {row.channel}")

    def join(self, queue_size: int) -> _Watcher[Row]:
        watcher: _Watcher[Row] = _Watcher(queue_size)
        if self.latest is not None:
            # The watch is subscribed and this was read after: any later change is still coming.
            watcher.offer(self.latest)
        self.watchers.add(watcher)
        return watcher

    def leave(self, watcher: _Watcher[Row]) -> None:
        self.watchers.discard(watcher)
        if not self.watchers:
            self._on_idle()
            self.task.cancel()

    def _broadcast(self, item: Row | _End) -> None:
        if not isinstance(item, _End):
            # Only a new version replaces it: a later subscriber joins with the very object the
            # others were handed, which is what lets them share its presentation and execution.
            self.latest = item
        for watcher in list(self.watchers):
            watcher.offer(item)

    async def _read(self) -> Row:
        self.reads += 1
        return await self.row.read()

    async def _run(self) -> None:
        try:
            async with self._subscribe(self.row.channel) as hints:
                current = await self._read()
                self._broadcast(current)
                last_seen = self.row.version(current)
                async for _ in _final_or(hints, self.row.is_final(current)):
                    current = await self._read()
                    if self.row.version(current) == last_seen:
                        continue
                    last_seen = self.row.version(current)
                    self._broadcast(current)
                    if self.row.is_final(current):
                        break
            self._on_idle()
            self._broadcast(_End())
        except asyncio.CancelledError:
            raise
        except Exception as error:
            self._on_idle()
            self._broadcast(_End(error))


async def _final_or(hints: AsyncIterator[dict[str, Any]], final: bool) -> AsyncIterator[dict[str, Any]]:
    """No hints at all when the first read was already final."""
    if final:
        return
    async for hint in hints:
        yield hint


class DirectLane:
    """A subscriber's own queue, as seen by the task that sends its frames.

    `take` hands over the next version only when `frame_of` has its frame ready (a shared result
    without errors); the end of the stream, an error, a version without a ready frame and a
    subscriber too slow to keep up all stay with the stream (the transport then pulls the stream,
    which yields, raises or ends exactly as it would have). After a final version it hands over,
    the stream's next step is its end.
    """

    def __init__(self) -> None:
        self._row: WatchedRow[Any] | None = None
        self._watcher: _Watcher[Any] | None = None

    def attach(self, row: WatchedRow[Row], watcher: _Watcher[Row]) -> None:
        self._row, self._watcher = row, watcher

    async def take(self, frame_of: Callable[[object], str | None]) -> str | None:
        row, watcher = self._row, self._watcher
        if row is None or watcher is None or watcher.too_slow or watcher.given_back is not None:
            return None
        item = await watcher.queue.get()
        frame = None if isinstance(item, _End) else frame_of(item)
        if frame is None:
            watcher.given_back = item
            return None
        if row.is_final(item):
            watcher.given_back = _End()
        return frame


# Set by the transport around a subscription's stream: the stream attaches its queue to it.
DIRECT_LANE: ContextVar[DirectLane | None] = ContextVar("DIRECT_LANE", default=None)


class LiveStreams:
    """This process's watches, one per channel, shared by every subscriber of that row."""

    def __init__(self, subscribe: Subscribe, *, queue_size: int) -> None:
        self._subscribe = subscribe
        self._queue_size = queue_size
        self._watches: dict[str, _Watch[Any]] = {}

    def watching(self, channel: str) -> _Watch[Any] | None:
        """The running watch of `channel`, if any (for tests and diagnostics)."""
        return self._watches.get(channel)

    async def stream(self, row: WatchedRow[Row]) -> AsyncGenerator[Row, None]:
        """The row's current state, then each new version, ending after a final one."""
        lane = DIRECT_LANE.get()
        # One stream per lane; and not carried into the tasks started below (the watch's own).
        DIRECT_LANE.set(None)
        watch: _Watch[Row] | None = self._watches.get(row.channel)
        if watch is None:
            watch = self._start(row)
        watcher = watch.join(self._queue_size)
        if lane is not None:
            lane.attach(row, watcher)
        try:
            while True:
                # A given-back item was taken from the queue after this same check: it comes first.
                item = watcher.given_back
                watcher.given_back = None
                if item is None:
                    if watcher.too_slow:
                        raise UseCaseError(ErrorCode.RATE_LIMITED, TOO_SLOW_MESSAGE)
                    item = await watcher.queue.get()
                if isinstance(item, _End):
                    if item.error is not None:
                        raise item.error
                    return
                yield item
                if row.is_final(item):
                    return
        finally:
            watch.leave(watcher)

    def _start(self, row: WatchedRow[Row]) -> _Watch[Row]:
        def forget() -> None:
            if self._watches.get(row.channel) is watch:
                del self._watches[row.channel]

        watch = _Watch(row, self._subscribe, forget)
        self._watches[row.channel] = watch
        return watch

    async def aclose(self) -> None:
        watches = list(self._watches.values())
        self._watches.clear()
        for watch in watches:
            watch.task.cancel()
        for watch in watches:
            with contextlib.suppress(asyncio.CancelledError):
                await watch.task
