"""Publish/subscribe of status changes for live subscriptions.

In-memory for the embedded default (one process); Redis pub/sub in production so every instance
behind the load balancer hears every change. Messages are small JSON hints ("order X changed");
subscribers re-read the truth from the database, so a hint may be repeated but must never be lost
after `subscribe` has been entered.

The Redis broker holds ONE pub/sub connection per process, whatever the number of subscribers: it
subscribes each channel once and hands every message to the local subscribers of its channel.
When Redis drops, it reconnects with backoff, subscribes every channel again and gives each
subscriber a `resync` hint, since whatever was published meanwhile is gone. Every subscriber has a
bounded queue: one that falls that far behind is dropped with `SubscriberTooSlow`, never allowed to
grow the process's memory. Nothing here reads the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Final, Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import RedisError

from payql.redis_pool import bounded_redis

logger = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE: Final = 64
# How long `subscribe` waits for Redis to confirm a new channel before giving up (nothing hangs).
CONFIRM_TIMEOUT_SECONDS: Final = 10.0
RECONNECT_FIRST_DELAY_SECONDS: Final = 0.05
RECONNECT_MAX_DELAY_SECONDS: Final = 5.0
# The listener wakes this often when idle, to notice a close.
IDLE_POLL_SECONDS: Final = 1.0


class SubscriberTooSlow(RuntimeError):
    """A subscriber left more messages unread than its queue holds; it has been dropped."""


class Broker(Protocol):
    async def publish(self, channel: str, message: dict[str, Any]) -> None: ...

    def subscribe(self, channel: str) -> contextlib.AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]:
        """Subscribe first, then read state: nothing published after entering is missed."""
        ...

    async def aclose(self) -> None: ...


class _Subscriber:
    """One local subscriber's bounded queue; overflowing it drops the subscriber."""

    def __init__(self, queue_size: int) -> None:
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=queue_size)
        self.dropped = False

    def offer(self, message: dict[str, Any]) -> bool:
        """Queue `message`; False (and the subscriber dropped) when its queue is full."""
        if self.dropped:
            return False
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self.dropped = True
            return False
        return True

    async def messages(self) -> AsyncIterator[dict[str, Any]]:
        while True:
            if self.dropped:
                raise SubscriberTooSlow("this subscriber fell too far behind and was dropped; subscribe again")
            yield await self._queue.get()


class _LocalSubscribers:
    """Channel -> the local subscribers of it: the in-process half of both brokers."""

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self.by_channel: dict[str, set[_Subscriber]] = defaultdict(set)

    def add(self, channel: str) -> _Subscriber:
        subscriber = _Subscriber(self.queue_size)
        self.by_channel[channel].add(subscriber)
        return subscriber

    def remove(self, channel: str, subscriber: _Subscriber) -> bool:
        """Forget `subscriber`; True when it was the channel's last."""
        subscribers = self.by_channel.get(channel)
        if subscribers is None:
            return False
        subscribers.discard(subscriber)
        if subscribers:
            return False
        del self.by_channel[channel]
        return True

    def dispatch(self, channel: str, message: dict[str, Any]) -> None:
        for subscriber in list(self.by_channel.get(channel, ())):
            if not subscriber.offer(message):
                logger.warning("dropped a subscriber of %s: its queue of %s is full", channel, self.queue_size)
                self.by_channel[channel].discard(subscriber)


class InMemoryBroker:
    def __init__(self, *, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._local = _LocalSubscribers(queue_size)

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        self._local.dispatch(channel, message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        subscriber = self._local.add(channel)
        try:
            yield subscriber.messages()
        finally:
            self._local.remove(channel, subscriber)

    async def aclose(self) -> None:
        self._local.by_channel.clear()


class RedisBroker:
    """Publishes through the process's shared pool; listens on one connection of its own."""

    def __init__(
        self,
        redis: Redis,
        redis_url: str,
        prefix: str,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        confirm_timeout: float = CONFIRM_TIMEOUT_SECONDS,
    ) -> None:
        self._redis = redis
        self._prefix = prefix
        self._confirm_timeout = confirm_timeout
        # One connection, no read timeout: it blocks on purpose between messages.
        self._listener = bounded_redis(
            redis_url,
            max_connections=1,
            wait_seconds=confirm_timeout,
            client_name=self.client_name,
            socket_timeout=None,
        )
        self._local = _LocalSubscribers(queue_size)
        self._confirmed: dict[str, asyncio.Event] = {}  # channel -> set once Redis confirmed it
        self._pubsub: PubSub | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._writes = asyncio.Lock()  # SUBSCRIBE/UNSUBSCRIBE and re-subscribing, one at a time

    @property
    def client_name(self) -> str:
        """What `CLIENT LIST` names this process's pub/sub connection."""
        return f"{self._prefix}pubsub"

    # Always subscribed, so the connection is a subscriber even with no local subscribers.
    control_channel: Final = "_broker"

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        await self._redis.publish(*self.wire(channel, message))

    def wire(self, channel: str, message: dict[str, Any]) -> tuple[str, str]:
        """The Redis channel and payload `publish` sends, for a caller that sends them in a pipeline of its own."""
        return self._prefix + channel, json.dumps(message)

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[AsyncIterator[dict[str, Any]]]:
        subscriber = self._local.add(channel)
        try:
            if channel not in self._confirmed:
                self._confirmed[channel] = asyncio.Event()
                await self._send_subscribe(channel)
            self._ensure_listening()
            async with asyncio.timeout(self._confirm_timeout):
                await self._confirmed[channel].wait()
            yield subscriber.messages()
        finally:
            if self._local.remove(channel, subscriber):
                self._confirmed.pop(channel, None)
                # Shielded: a cancelled subscriber must still stop the channel's traffic.
                await asyncio.shield(self._send_unsubscribe(channel))

    def _ensure_listening(self) -> None:
        if self._closed:
            raise RuntimeError("the broker is closed")
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._listen_forever(), name="payql-broker-listener")

    async def _send_subscribe(self, channel: str) -> None:
        async with self._writes:
            if self._pubsub is not None and channel in self._confirmed:
                with contextlib.suppress(RedisError, OSError):  # the listener re-subscribes on reconnect
                    await self._pubsub.subscribe(self._prefix + channel)

    async def _send_unsubscribe(self, channel: str) -> None:
        async with self._writes:
            if self._pubsub is not None and channel not in self._confirmed:
                with contextlib.suppress(RedisError, OSError):
                    await self._pubsub.unsubscribe(self._prefix + channel)

    async def _listen_forever(self) -> None:
        delay = RECONNECT_FIRST_DELAY_SECONDS
        while not self._closed:
            try:
                await self._connect()
                delay = RECONNECT_FIRST_DELAY_SECONDS
                await self._read_messages()
            except (RedisError, OSError) as error:
                logger.warning("Redis pub/sub connection lost (%s); reconnecting in %.2f s", error, delay)
            except Exception:
                logger.exception("Redis pub/sub listener failed; reconnecting in %.2f s", delay)
            finally:
                await self._disconnect()
            if not self._closed:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_DELAY_SECONDS)

    async def _connect(self) -> None:
        async with self._writes:
            pubsub = self._listener.pubsub()
            self._pubsub = pubsub
            channels = [self._prefix + channel for channel in self._confirmed]
            await pubsub.subscribe(self._prefix + self.control_channel, *channels)

    async def _disconnect(self) -> None:
        async with self._writes:
            pubsub, self._pubsub = self._pubsub, None
        if pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _read_messages(self) -> None:
        assert self._pubsub is not None
        while not self._closed:
            raw = await self._pubsub.get_message(timeout=IDLE_POLL_SECONDS)
            if raw is None:
                continue
            channel = _decode(raw["channel"]).removeprefix(self._prefix)
            if raw["type"] == "subscribe":
                self._on_confirmed(channel)
            elif raw["type"] == "message":
                self._local.dispatch(channel, json.loads(raw["data"]))

    def _on_confirmed(self, channel: str) -> None:
        confirmed = self._confirmed.get(channel)
        if confirmed is None:
            return
        if confirmed.is_set():
            # Subscribed again after a reconnect: what was published meanwhile is lost.
            self._local.dispatch(channel, {"channel": channel, "resync": True})
        confirmed.set()

    async def aclose(self) -> None:
        self._closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._disconnect()
        await self._listener.aclose()
        self._local.by_channel.clear()


def _decode(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
