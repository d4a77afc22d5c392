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
takes and cannot send that way it gives back, and the stream yields it next, in order. Subscribers
on that lane with the same key wait without being woken for each version: the one woken to execute
a version writes its frame to all the others from one loop (`_Lanes.hand_out`), through each one's
own `write`, and a send that cannot finish at once is finished by that subscriber's own task.

Authorization is not done here: the caller checks that the subscriber may see the row before
joining. Nothing here writes to the database, and nothing here builds a frame: a frame comes only
from the `frame_of` of a subscriber with the same key (looked up once a version for all of them),
and goes only to each one's own socket.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Coroutine, Generator, Hashable
from contextlib import AbstractAsyncContextManager
from contextvars import Context, ContextVar, copy_context
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
        self.lanes: dict[Hashable, _Lanes] = {}  # its subscribers on the direct lane, by key
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
        for lanes in list(self.lanes.values()):
            if lanes.producer is None:
                # Nobody is executing for them: what is ready is written now, and one is woken to
                # execute the rest (a running producer hands it out when it is done).
                lanes.hand_out(None)

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


class _Lanes:
    """The subscribers of one watch on the direct lane with one key: every frame ready for one is
    ready for all of them, and one task writes it to every one that waits for it."""

    def __init__(self) -> None:
        self.members = 0
        # Waiting for their next version, in the order they started waiting; no task of theirs runs.
        self.parked: dict[DirectLane, None] = {}
        # The one member woken to get a version executed (through Strawberry) for all of them.
        self.producer: DirectLane | None = None
        # The last version whose frame was ready, and that frame; and, during a hand-out, a version
        # whose frame is not: each looked up once for every member rather than once each (a tenth
        # of a hand-out's CPU at 5,000 members).
        self._ready: tuple[object, str] | None = None
        self._unready: object | None = None

    def ready_frame(self, item: object, frame_of: Callable[[object], str | None]) -> str | None:
        """`item`'s ready frame for this key, as `frame_of` (any member's) gives it. A frame not
        ready is not asked for again in the same hand-out, which executes nothing: only in the next."""
        ready = self._ready
        if ready is not None and ready[0] is item:
            return ready[1]
        if item is self._unready:
            return None
        frame = frame_of(item)
        if frame is None:
            self._unready = item
        else:
            self._ready = (item, frame)
        return frame

    def hand_out(self, produced: object | None) -> None:
        """Writes every parked member's ready frames, in order, from this one call; wakes a member
        that must go through its own task; and wakes one producer when some still wait for a version
        nobody executed. `produced` is the version the last producer executed (None: none)."""
        waiting: DirectLane | None = None
        try:
            for lane in list(self.parked):
                if lane.deliver(produced) and waiting is None:
                    waiting = lane
        finally:
            self._unready = None
        if waiting is not None and self.producer is None:
            self.producer = waiting
            waiting.wake()


class _Rest:
    """The rest of a coroutine that suspended on its first step, for another task to await: awaiting
    it hands up the future that step was waiting for, and carries on from there, every step in the
    same context as the first (as a task runs each step of its coroutine in its own)."""

    def __init__(self, coroutine: Coroutine[Any, Any, None], suspended_on: Any, context: Context) -> None:
        self._coroutine = coroutine
        self._suspended_on = suspended_on
        self._context = context

    def __await__(self) -> Generator[Any, Any, None]:
        coroutine, waiting, context = self._coroutine, self._suspended_on, self._context
        while True:
            try:
                sent = yield waiting
            except GeneratorExit:
                coroutine.close()
                raise
            except BaseException as error:  # thrown into the coroutine, as `await` would (cancellation too)
                try:
                    waiting = context.run(coroutine.throw, error)
                except StopIteration:
                    return
            else:
                try:
                    waiting = context.run(coroutine.send, sent)
                except StopIteration:
                    return


class DirectLane:
    """A subscriber's own queue, as seen by the task that sends its frames, and its place among the
    subscribers of the same row with the same key (`join`).

    `take` hands over the next version only when its frame is ready (a shared result without
    errors); the end of the stream, an error, a version without a ready frame and a subscriber too
    slow to keep up all stay with the stream (the transport then pulls the stream, which yields,
    raises or ends exactly as it would have). After a final version it hands over, the stream's next
    step is its end.

    While its queue is empty, a joined subscriber's task waits (it is *parked*) and is not woken for
    each version: the member that gets a version executed (the producer) writes that version's
    frame to every parked member from one loop (`_Lanes.hand_out`), in each member's order. A parked
    member's task is woken only for what it must do itself: a version that could not be shared
    (each executes its own, so its errors stay its own), the end, being too slow, a send its socket
    could not take at once (the rest of that send is finished by its own task, so one blocked socket
    never holds back the others; its queue then fills and it is dropped as before), or a send that
    failed (raised in its own task, as its own send would have).
    """

    def __init__(self) -> None:
        self._watch: _Watch[Any] | None = None
        self._watcher: _Watcher[Any] | None = None
        self._key: Hashable = None
        self._lanes: _Lanes | None = None
        self._frame_of: Callable[[object], str | None] = _no_frame
        self._write: Callable[[str], Coroutine[Any, Any, None]] | None = None
        self._context: Context | None = None
        self._parked: asyncio.Future[None] | None = None
        self._handed: _Rest | None = None
        self._failed: Exception | None = None
        self._took: object | None = None  # what this member's task pulls through the stream

    def attach(self, watch: _Watch[Row], watcher: _Watcher[Row]) -> None:
        self._watch, self._watcher = watch, watcher

    @property
    def joined(self) -> bool:
        return self._lanes is not None

    def join(
        self,
        key: Hashable,
        frame_of: Callable[[object], str | None],
        write: Callable[[str], Coroutine[Any, Any, None]],
    ) -> None:
        """From now on, versions whose frame `frame_of` has ready (for `key`, the subscriber's own:
        never another's) go out through `write`, from whichever task has them ready. Called from the
        subscriber's own task: its context is the one every write of it runs in."""
        if self._watch is None or self._lanes is not None:
            return
        self._key, self._frame_of, self._write = key, frame_of, write
        self._context = copy_context()
        self._lanes = self._watch.lanes.setdefault(key, _Lanes())
        self._lanes.members += 1

    async def take(self) -> str | None:
        """The next version's ready frame payload, waiting parked while the queue is empty; None when
        the stream must be pulled instead."""
        watcher = self._watcher
        if watcher is None or self._watch is None or self._lanes is None:
            return None
        while True:
            if self._handed is not None:
                rest, self._handed = self._handed, None
                await rest
            if self._failed is not None:
                failed, self._failed = self._failed, None
                raise failed
            if watcher.too_slow or watcher.given_back is not None:
                self._took = watcher.given_back
                return None
            if watcher.queue.empty():
                self.release()
                await self._park()
                continue
            item = watcher.queue.get_nowait()
            frame = None if isinstance(item, _End) else self._frame_of(item)
            if frame is None:
                watcher.given_back = self._took = item
                return None
            if self._watch.row.is_final(item):
                watcher.given_back = _End()
            self._took = item
            self.release()
            return frame

    def release(self) -> None:
        """What this member's task pulled is executed (or failed): if it was the producer, every
        parked member gets what is now ready, before this member's own frame is sent."""
        lanes = self._lanes
        if lanes is None or lanes.producer is not self:
            return
        lanes.producer = None
        produced, self._took = self._took, None
        lanes.hand_out(produced)

    def close(self) -> None:
        """The subscriber's task is done with the stream: it leaves its lanes, producer's role included."""
        lanes = self._lanes
        if lanes is None:
            return
        self.release()
        lanes.parked.pop(self, None)
        self._lanes = None
        lanes.members -= 1
        if lanes.members == 0 and self._watch is not None and self._watch.lanes.get(self._key) is lanes:
            del self._watch.lanes[self._key]

    @property
    def is_parked(self) -> bool:
        return self._parked is not None and not self._parked.done()

    def wake(self) -> None:
        if self._parked is not None and not self._parked.done():
            self._parked.set_result(None)
        if self._lanes is not None:
            self._lanes.parked.pop(self, None)

    async def _park(self) -> None:
        assert self._lanes is not None
        self._parked = asyncio.get_running_loop().create_future()
        self._lanes.parked[self] = None
        try:
            await self._parked
        finally:
            # Cancelled or woken: either way no one writes for this member any more.
            self._parked = None
            if self._lanes is not None:
                self._lanes.parked.pop(self, None)

    def deliver(self, produced: object | None) -> bool:
        """Writes this parked member's ready frames, in order. True when it still waits for a version
        nobody executed yet; False when it has nothing left, or was woken to go on by itself."""
        watcher, watch, parked, lanes = self._watcher, self._watch, self._parked, self._lanes
        assert watcher is not None and watch is not None and lanes is not None
        while parked is not None and not parked.done():  # woken (by a write handed over, say): no more
            if watcher.too_slow:
                self.wake()
                return False
            item = watcher.given_back
            if item is None:
                if watcher.queue.empty():
                    return False
                item = watcher.queue.get_nowait()
            frame = None if isinstance(item, _End) else lanes.ready_frame(item, self._frame_of)
            if frame is None:
                watcher.given_back = item
                if isinstance(item, _End) or item is produced:
                    # The end, or a version executed for this key that could not be shared (it had
                    # errors): this member's own task takes it through Strawberry.
                    self.wake()
                    return False
                return True
            watcher.given_back = _End() if watch.row.is_final(item) else None
            self._write_now(frame)
        return False

    def _write_now(self, frame: str) -> None:
        """Sends `frame` without suspending the caller: a send that would wait (the socket cannot
        take it now) is handed to this member's own task to finish, and so is a send that failed."""
        assert self._write is not None and self._context is not None
        sending = self._write(frame)
        try:
            suspended_on = self._context.run(sending.send, None)
        except StopIteration:
            return
        except Exception as error:
            self._failed = error
        else:
            self._handed = _Rest(sending, suspended_on, self._context)
        self.wake()


def _no_frame(_item: object) -> str | None:
    return None


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
            lane.attach(watch, watcher)
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
