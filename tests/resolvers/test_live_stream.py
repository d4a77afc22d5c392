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


async def laned(streams: LiveStreams, table: Table) -> tuple[DirectLane, AsyncGenerator[Row, None]]:
    """A stream whose queue a transport can take from, as the websocket handler does; started."""
    lane = DirectLane()
    DIRECT_LANE.set(lane)
    stream = streams.stream(table.watched())
    # Pulled in this very task (as the handler does), so that the stream's reset is seen here.
    assert (await anext(stream)).status == "PENDING"
    assert DIRECT_LANE.get() is None  # attached once, and not handed on to the watch's task
    return lane, stream


async def test_a_direct_lane_takes_only_versions_with_a_frame_and_gives_the_rest_back_in_order() -> None:
    broker, table = InMemoryBroker(), Table()
    streams = LiveStreams(broker.subscribe, queue_size=8)
    lane, stream = await laned(streams, table)

    table.row = Row("PROCESSING", 2)
    await broker.publish("order:1", {"channel": "order:1"})
    # No frame for it: the version stays with the stream, which yields it next.
    assert await asyncio.wait_for(lane.take(lambda row: None), WAIT) is None
    assert await lane.take(lambda row: "never asked") is None  # nothing taken while one is given back
    assert (await take(stream)).status == "PROCESSING"

    table.row = Row("PAID", 3)
    await broker.publish("order:1", {"channel": "order:1"})
    frame = await asyncio.wait_for(lane.take(lambda row: f"frame of {row}"), WAIT)
    assert frame == f"frame of {Row('PAID', 3)}"
    with pytest.raises(StopAsyncIteration):  # after a final version taken by the lane, the end
        await take(stream)
    await until(lambda: streams.watching("order:1") is None)


async def test_a_direct_lane_leaves_a_too_slow_subscriber_to_the_stream_which_drops_it() -> None:
    broker, table = InMemoryBroker(), Table()
    streams = LiveStreams(broker.subscribe, queue_size=2)
    lane, stream = await laned(streams, table)
    async with aclosing(streams.stream(table.watched())) as reader:
        await take(reader)
        for version in range(2, 6):
            table.row = Row("PROCESSING", version)
            await broker.publish("order:1", {"channel": "order:1"})
            assert (await take(reader)).version == version

        # Its queue overflowed: the lane takes nothing, and the stream drops it as before.
        assert await lane.take(lambda row: "frame") is None
        with pytest.raises(UseCaseError) as dropped:
            await take(stream)
        assert dropped.value.code is ErrorCode.RATE_LIMITED
