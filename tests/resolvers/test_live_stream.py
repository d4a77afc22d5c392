"""The shared watch loop: N subscribers of one row cost one read per change, not N; a subscriber
that stops reading is dropped alone; the watch stops when its last subscriber leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from dataclasses import dataclass

import pytest

from payql.pubsub import InMemoryBroker
from resolvers.errors import ErrorCode, UseCaseError
from resolvers.live_stream import DIRECT_LANE, DirectLane, LiveStreams, WatchedRow

SUBSCRIBERS = 200
WAIT = 10.0


@dataclass
class Row:
    status: str
    version: int


class Table:
    """One row and how many times it was read."""

    def __init__(self) -> None:
        self.row = Row("PENDING", 1)
        self.reads = 0

    async def read(self) -> Row:
        self.reads += 1
        return Row(self.row.status, self.row.version)

    def watched(self, channel: str = "order:1") -> WatchedRow[Row]:
        return WatchedRow(
            channel=channel,
            read=self.read,
            version=lambda row: row.version,
            is_final=lambda row: row.status == "PAID",
        )


async def take(stream: AsyncGenerator[Row, None]) -> Row:
    return await asyncio.wait_for(anext(stream), WAIT)


async def until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until `condition` holds (the watch runs in its own task)."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0)

    await asyncio.wait_for(poll(), WAIT)


async def test_every_subscriber_of_a_row_shares_one_read_per_change() -> None:
    broker, table = InMemoryBroker(), Table()
    streams = LiveStreams(broker.subscribe, queue_size=8)
    subscribers = [streams.stream(table.watched()) for _ in range(SUBSCRIBERS)]
    firsts = [await take(stream) for stream in subscribers]
    assert {row.status for row in firsts} == {"PENDING"}
    assert table.reads == 1

    table.row = Row("PROCESSING", 2)
    await broker.publish("order:1", {"channel": "order:1"})
    assert {(await take(stream)).status for stream in subscribers} == {"PROCESSING"}
    table.row = Row("PAID", 3)
    await broker.publish("order:1", {"channel": "order:1"})
    assert {(await take(stream)).status for stream in subscribers} == {"PAID"}
    assert table.reads == 3  # the first state and two changes, for all 200 subscribers together

    for stream in subscribers:  # a final state ends every stream
        with pytest.raises(StopAsyncIteration):
            await take(stream)


async def test_a_hint_without_a_change_is_not_repeated_to_subscribers() -> None:
    broker, table = InMemoryBroker(), Table()
    streams = LiveStreams(broker.subscribe, queue_size=8)
    async with aclosing(streams.stream(table.watched())) as stream:
        await take(stream)
        await broker.publish("order:1", {"channel": "order:1"})  # e.g. a resync after a reconnect
        await until(lambda: table.reads == 2)
        table.row = Row("PAID", 2)
        await broker.publish("order:1", {"channel": "order:1"})
        assert (await take(stream)).status == "PAID"


async def test_a_subscriber_that_stops_reading_is_dropped_and_the_others_carry_on() -> None:
    broker, table = InMemoryBroker(), Table()
    streams = LiveStreams(broker.subscribe, queue_size=2)
    async with aclosing(streams.stream(table.watched())) as slow, aclosing(streams.stream(table.watched())) as reader:
        await take(slow)
        await take(reader)
        for version in range(2, 6):
            table.row = Row("PROCESSING", version)
            await broker.publish("order:1", {"channel": "order:1"})
            assert (await take(reader)).version == version
        with pytest.raises(UseCaseError) as dropped:
            for _ in range(3):
                await take(slow)
        assert dropped.value.code is ErrorCode.RATE_LIMITED
        table.row = Row("PAID", 6)
        await broker.publish("order:1", {"channel": "order:1"})
        assert (await take(reader)).status == "PAID"


async def test_the_watch_stops_and_unsubscribes_when_its_last_subscriber_leaves() -> None:
    broker, table = InMemoryBroker(), Table()
    streams = LiveStreams(broker.subscribe, queue_size=8)
    first, second = streams.stream(table.watched()), streams.stream(table.watched())
    await take(first)
    await take(second)
    watch = streams.watching("order:1")
    assert watch is not None
    await first.aclose()
    assert streams.watching("order:1") is watch  # one subscriber is still there
    await second.aclose()
    assert streams.watching("order:1") is None
    await until(watch.task.done)
    assert not broker._local.by_channel  # the channel has no subscriber left in the broker


async def test_a_subscriber_joining_a_running_watch_gets_the_current_state_first() -> None:
    broker, table = InMemoryBroker(), Table()
    streams = LiveStreams(broker.subscribe, queue_size=8)
    async with aclosing(streams.stream(table.watched())) as early:
        await take(early)
        table.row = Row("PROCESSING", 2)
        await broker.publish("order:1", {"channel": "order:1"})
        await take(early)
        async with aclosing(streams.stream(table.watched())) as late:
            assert (await take(late)).status == "PROCESSING"
        assert table.reads == 2  # the late subscriber cost no read


class Laned:
    """One subscriber driven as the websocket handler drives it (`payql.live_frames`): its first
    version, and any version without a ready frame, pulled through its own stream and "executed"
    there (its frame made ready for its key); the others taken from its lane or written to it."""

    def __init__(self, streams: LiveStreams, table: Table, key: str, ready: dict[tuple[str, int], str]) -> None:
        self.streams, self.table, self.key, self.ready = streams, table, key, ready
        self.lane = DirectLane()
        self.sent: list[str] = []  # the frames its socket took, in order, whoever wrote them
        self.pulled: list[int] = []  # the versions its own task pulled through the stream (executed)
        self.unshareable: set[int] = set()  # versions whose execution has errors: never a ready frame
        self.blocked: asyncio.Event | None = None  # while not set, its socket takes no frame
        self.broken = False  # its socket is gone: a send fails
        self.task = asyncio.create_task(self._run())

    async def write(self, frame: str) -> None:
        if self.blocked is not None:
            await self.blocked.wait()
        if self.broken:
            raise ConnectionResetError("gone")
        self.sent.append(frame)

    def frame_of(self, row: object) -> str | None:
        assert isinstance(row, Row)
        return self.ready.get((self.key, row.version))

    async def _run(self) -> None:
        DIRECT_LANE.set(self.lane)
        try:
            async with aclosing(self.streams.stream(self.table.watched())) as stream:
                while True:
                    if self.lane.joined:
                        frame = await self.lane.take()
                        if frame is not None:
                            await self.write(frame)
                            continue
                    try:
                        row = await anext(stream)
                        self.pulled.append(row.version)
                        if row.version not in self.unshareable:
                            self.ready.setdefault((self.key, row.version), f"{self.key}:{row.version}")
                    except StopAsyncIteration:
                        return
                    finally:
                        self.lane.release()
                    self.lane.join(self.key, self.frame_of, self.write)
                    await self.write(self.frame_of(row) or f"own {self.key}:{row.version}")
        finally:
            self.lane.close()


@pytest.fixture
def wakes(monkeypatch: pytest.MonkeyPatch) -> list[DirectLane]:
    """Every time a subscriber's task is woken from its lane's wait, that lane."""
    woken: list[DirectLane] = []
    original = DirectLane._park

    async def counting(self: DirectLane) -> None:
        await original(self)
        woken.append(self)

    monkeypatch.setattr(DirectLane, "_park", counting)
    return woken


async def parked(subscribers: list[Laned]) -> None:
    await until(lambda: all(subscriber.lane.is_parked for subscriber in subscribers))


async def parked_one_by_one(
    streams: LiveStreams, table: Table, ready: dict[tuple[str, int], str], count: int = 5
) -> list[Laned]:
    """`count` subscribers with key "k", each parked before the next joins: the first to wait is the one
    woken to execute the next version, the last to wait never is."""
    subscribers: list[Laned] = []
    for _ in range(count):
        subscribers.append(Laned(streams, table, "k", ready))
        await parked(subscribers)
    return subscribers


async def change(broker: InMemoryBroker, table: Table, status: str, version: int) -> None:
    table.row = Row(status, version)
    await broker.publish("order:1", {"channel": "order:1"})


async def test_one_task_writes_a_version_to_every_waiting_subscriber_and_no_other_task_is_woken(
    wakes: list[DirectLane],
) -> None:
    broker, table = InMemoryBroker(), Table()
    streams = LiveStreams(broker.subscribe, queue_size=8)
    ready: dict[tuple[str, int], str] = {}
    subscribers = [Laned(streams, table, "k", ready) for _ in range(SUBSCRIBERS)]
    await parked(subscribers)

    wakes.clear()
    await change(broker, table, "PROCESSING", 2)
    await until(lambda: all(len(subscriber.sent) == 2 for subscriber in subscribers))
    await parked(subscribers)
    # One task was woken to execute it (through its own stream), and it wrote the frame to all others.
    assert len(wakes) == 1
    assert [subscriber for subscriber in subscribers if 2 in subscriber.pulled] == [
        subscriber for subscriber in subscribers if subscriber.lane in wakes
    ]

    await change(broker, table, "PAID", 3)
    await asyncio.wait_for(asyncio.gather(*(subscriber.task for subscriber in subscribers)), WAIT)
    for subscriber in subscribers:
        assert subscriber.sent == ["k:1", "k:2", "k:3"]
    # Again one execution of the final version; every task was then woken once, for its end.
    assert sum(3 in subscriber.pulled for subscriber in subscribers) == 1
    assert streams.watching("order:1") is None


async def test_subscribers_with_another_key_never_get_a_frame_of_this_one() -> None:
    broker, table = InMemoryBroker(), Table()
    streams = LiveStreams(broker.subscribe, queue_size=8)
    ready: dict[tuple[str, int], str] = {}
    groups = {key: [Laned(streams, table, key, ready) for _ in range(5)] for key in ("a", "b")}
    everyone = [subscriber for group in groups.values() for subscriber in group]
    await parked(everyone)

    await change(broker, table, "PROCESSING", 2)
    await until(lambda: all(len(subscriber.sent) == 2 for subscriber in everyone))
    await change(broker, table, "PAID", 3)
    await asyncio.wait_for(asyncio.gather(*(subscriber.task for subscriber in everyone)), WAIT)
    for key, group in groups.items():
        for subscriber in group:
            assert subscriber.sent == [f"{key}:1", f"{key}:2", f"{key}:3"]
        # Each key's later versions executed once, by one of its own subscribers.
        assert sorted(version for subscriber in group for version in subscriber.pulled if version > 1) == [2, 3]


async def test_a_version_that_cannot_be_shared_goes_through_each_subscribers_own_task() -> None:
    broker, table = InMemoryBroker(), Table()
    streams = LiveStreams(broker.subscribe, queue_size=8)
    ready: dict[tuple[str, int], str] = {}
    subscribers = [Laned(streams, table, "k", ready) for _ in range(10)]
    await parked(subscribers)
    for subscriber in subscribers:
        subscriber.unshareable.add(2)  # its execution has errors: each executes and sends its own

    await change(broker, table, "PROCESSING", 2)
    await until(lambda: all(len(subscriber.sent) == 2 for subscriber in subscribers))
    await change(broker, table, "PAID", 3)
    await asyncio.wait_for(asyncio.gather(*(subscriber.task for subscriber in subscribers)), WAIT)
    for subscriber in subscribers:
        assert subscriber.sent == ["k:1", "own k:2", "k:3"]
        assert 2 in subscriber.pulled


async def test_a_socket_that_cannot_take_a_frame_holds_back_no_one_and_its_subscriber_is_dropped() -> None:
    broker, table = InMemoryBroker(), Table()
    streams = LiveStreams(broker.subscribe, queue_size=2)
    ready: dict[tuple[str, int], str] = {}
    subscribers = await parked_one_by_one(streams, table, ready)
    *others, slow = subscribers
    slow.blocked = asyncio.Event()

    for version in range(2, 7):
        await change(broker, table, "PROCESSING", version)
        await until(lambda: all(other.sent[-1] == f"k:{table.row.version}" for other in others))
    assert slow.sent == ["k:1"]
    assert slow.pulled == [1]  # the version its socket could not take was written to it, not executed

    slow.blocked.set()  # the socket drains: the send it could not take goes out first, then the drop
    with pytest.raises(UseCaseError) as dropped:
        await asyncio.wait_for(slow.task, WAIT)
    assert dropped.value.code is ErrorCode.RATE_LIMITED
    assert slow.sent == ["k:1", "k:2"]

    await change(broker, table, "PAID", 7)
    await asyncio.wait_for(asyncio.gather(*(other.task for other in others)), WAIT)
    for other in others:
        assert other.sent == [f"k:{version}" for version in range(1, 8)]


async def test_a_send_that_fails_fails_in_its_own_subscribers_task_alone() -> None:
    broker, table = InMemoryBroker(), Table()
    streams = LiveStreams(broker.subscribe, queue_size=8)
    ready: dict[tuple[str, int], str] = {}
    subscribers = await parked_one_by_one(streams, table, ready)
    *others, gone = subscribers
    gone.broken = True

    await change(broker, table, "PROCESSING", 2)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(gone.task, WAIT)
    await until(lambda: all(len(other.sent) == 2 for other in others))
    await change(broker, table, "PAID", 3)
    await asyncio.wait_for(asyncio.gather(*(other.task for other in others)), WAIT)
    for other in others:
        assert other.sent == ["k:1", "k:2", "k:3"]
    assert gone.sent == ["k:1"]


async def test_a_subscriber_that_left_is_not_written_to() -> None:
    broker, table = InMemoryBroker(), Table()
    streams = LiveStreams(broker.subscribe, queue_size=8)
    ready: dict[tuple[str, int], str] = {("k", 2): "k:2"}  # already executed: written as it is handed out
    subscribers = await parked_one_by_one(streams, table, ready)
    *rest, left = subscribers
    watch = streams.watching("order:1")
    assert watch is not None
    # An unsubscribe or a closed socket cancels its task while it waits; the version comes before
    # that task even runs again.
    left.task.cancel()
    watch._broadcast(Row("PROCESSING", 2))
    assert [subscriber.sent for subscriber in rest] == [["k:1", "k:2"]] * len(rest)
    assert left.sent == ["k:1"]
    with pytest.raises(asyncio.CancelledError):
        await left.task


async def test_the_subscriber_executing_a_version_for_all_may_leave_or_stall_without_holding_back_the_others() -> None:
    broker, table = InMemoryBroker(), Table()
    streams = LiveStreams(broker.subscribe, queue_size=8)
    ready: dict[tuple[str, int], str] = {}
    subscribers = await parked_one_by_one(streams, table, ready)
    first, *rest = subscribers
    # The first to wait is woken to execute the next version; its own socket takes nothing, and it
    # leaves (at whatever point it got to): the others get the version all the same.
    first.blocked = asyncio.Event()
    await change(broker, table, "PROCESSING", 2)
    await until(lambda: not first.lane.is_parked)
    first.task.cancel()
    await until(lambda: all(len(subscriber.sent) == 2 for subscriber in rest))

    await change(broker, table, "PAID", 3)
    await asyncio.wait_for(asyncio.gather(*(subscriber.task for subscriber in rest)), WAIT)
    for subscriber in rest:
        assert subscriber.sent == ["k:1", "k:2", "k:3"]
    await until(lambda: streams.watching("order:1") is None)
