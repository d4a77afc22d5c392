"""Redis behind Sentinel (`redis+sentinel://` URLs): a throwaway primary, replica and sentinel. After the
primary dies, or is demoted while alive, the same client's commands and the broker's subscribers reach
the new primary; the pool stays bounded and blocking; closing the client closes its sentinel connections.
Missing `redis-server` fails these tests with the reason."""

from __future__ import annotations

import asyncio
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from payql.pubsub import RedisBroker
from payql.redis_pool import SentinelAddress, bounded_redis, sentinel_address
from payql.settings import Settings
from tests.jobs.conftest import RedisServer
from tests.payql.redis_servers import connections_named

SERVICE = "payql"
WAIT = 20.0


async def wait_until(condition: Callable[[], Awaitable[bool]], what: str) -> None:
    async def poll() -> None:
        while not await condition():
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), WAIT)
    except TimeoutError:
        raise AssertionError(f"not within {WAIT}s: {what}") from None


async def ask(port: int, *command: Any) -> Any:
    """One command on a connection of its own (to a server or the sentinel)."""
    admin = Redis(host="127.0.0.1", port=port, socket_timeout=5)
    try:
        return await admin.execute_command(*command)
    finally:
        await admin.aclose()


def _pairs(entry: Any) -> dict[str, str]:
    """A sentinel's flat [name, value, name, value…] answer (or one already paired) as text."""
    if isinstance(entry, dict):
        return {_text(name): _text(value) for name, value in entry.items()}
    return {_text(name): _text(value) for name, value in zip(entry[::2], entry[1::2], strict=True)}


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class SentinelGroup:
    primary: RedisServer
    replica: RedisServer
    sentinel: RedisServer

    @property
    def url(self) -> str:
        return f"redis+sentinel://127.0.0.1:{self.sentinel.port}/{SERVICE}"

    async def primary_port(self) -> int:
        _, port = await ask(self.sentinel.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return int(port)

    async def role(self, port: int) -> str:
        role: bytes = (await ask(port, "ROLE"))[0]
        return role.decode()

    async def primary_known(self) -> bool:
        return await self.primary_port() == self.primary.port

    async def ready_to_fail_over(self) -> None:
        """Until the sentinel could promote the replica: it lists it from the primary's INFO first, and
        can promote it once it has read the replica's own INFO (its run id, every 10 s) with its link up."""

        async def promotable() -> bool:
            for entry in await ask(self.sentinel.port, "SENTINEL", "REPLICAS", SERVICE):
                fields = _pairs(entry)
                if fields.get("runid") and fields.get("master-link-status") == "ok" and fields.get("flags") == "slave":
                    return True
            return False

        await wait_until(promotable, "the sentinel can promote the replica")

    async def wait_for_primary(self, port: int) -> None:
        async def promoted() -> bool:
            return await self.primary_port() == port and await self.role(port) == "master"

        await wait_until(promoted, f"the sentinel names 127.0.0.1:{port} the primary")


@pytest.fixture
async def group(tmp_path: Path) -> AsyncIterator[SentinelGroup]:
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("redis-server is not on PATH: these tests run their own Redis (e.g. apt-get install redis-server)")
    folders = {name: tmp_path / name for name in ("primary", "replica", "sentinel")}
    for folder in folders.values():
        folder.mkdir()
    # A replica's first sync would otherwise wait 5 s for more replicas to share it (diskless sync's delay).
    primary = RedisServer(executable, folders["primary"], arguments=["--repl-diskless-sync-delay", "0"])
    started: list[RedisServer] = []
    try:
        primary.start()
        started.append(primary)
        replica = RedisServer(executable, folders["replica"], arguments=["--replicaof", "127.0.0.1", str(primary.port)])
        replica.start()
        started.append(replica)

        async def replica_synced() -> bool:
            return (await ask(replica.port, "INFO", "replication")).get("master_link_status") == "up"

        # Synced before the sentinel starts: its first look at the primary then lists the replica (the
        # next look would be ten seconds later).
        await wait_until(replica_synced, "the replica has synced with the primary")
        config = folders["sentinel"] / "sentinel.conf"
        # One sentinel, a quorum of one, and a primary counted down after a second of silence.
        config.write_text(
            f"sentinel monitor {SERVICE} 127.0.0.1 {primary.port} 1\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
        )
        sentinel = RedisServer(executable, folders["sentinel"], config=config, arguments=["--sentinel"])
        sentinel.start()
        started.append(sentinel)
        found = SentinelGroup(primary, replica, sentinel)

        await wait_until(found.primary_known, "the sentinel names the primary")
        yield found
    finally:
        for server in started:
            server.stop()


def test_a_sentinel_url_names_its_sentinels_service_database_and_credentials() -> None:
    assert sentinel_address("redis://127.0.0.1:6379/0") is None
    assert sentinel_address("redis+sentinel://s1/payql") == SentinelAddress((("s1", 26379),), "payql")
    assert sentinel_address("redis+sentinel://:p%40ss@s1:26380,s2,[::1]:26381/pay%20ql/3") == SentinelAddress(
        (("s1", 26380), ("s2", 26379), ("::1", 26381)), "pay ql", 3, None, "p@ss"
    )
    assert sentinel_address("redis+sentinel://user:secret@s1/payql") == SentinelAddress(
        (("s1", 26379),), "payql", 0, "user", "secret"
    )
    for broken in (
        "redis+sentinel://s1",
        "redis+sentinel:///payql",
        "redis+sentinel://s1:port/payql",
        "redis+sentinel://s1/payql/first",
    ):
        with pytest.raises(ValueError, match="sentinel"):
            sentinel_address(broken)


def test_settings_refuse_a_sentinel_url_that_names_no_service() -> None:
    with pytest.raises(ValueError, match="names its sentinels and its service"):
        Settings(redis_url="redis+sentinel://127.0.0.1:26379")


async def test_after_the_primary_dies_the_same_client_writes_to_the_promoted_replica(group: SentinelGroup) -> None:
    client = bounded_redis(group.url, max_connections=4, wait_seconds=WAIT, client_name="sentinel-test")
    try:
        await client.set("before", "1")
        assert await client.execute_command("WAIT", 1, 5000) == 1  # the replica has it
        await group.ready_to_fail_over()
        group.primary.stop()  # SIGKILL
        await group.wait_for_primary(group.replica.port)
        await client.set("after", "2")
        assert await ask(group.replica.port, "MGET", "before", "after") == [b"1", b"2"]
    finally:
        await client.aclose()


async def test_connections_to_a_demoted_primary_move_to_the_new_one(group: SentinelGroup) -> None:
    """A failover with the old primary alive: the pool's connections to it get READONLY at their next
    write, reconnect through the sentinel, and the write is sent again to the new primary."""
    client = bounded_redis(group.url, max_connections=4, wait_seconds=WAIT, client_name="sentinel-test")
    try:
        await asyncio.gather(*(client.set(f"warm:{n}", n) for n in range(4)))
        assert await connections_named(f"redis://127.0.0.1:{group.primary.port}/0", "sentinel-test") == 4
        await group.ready_to_fail_over()
        assert await ask(group.sentinel.port, "SENTINEL", "FAILOVER", SERVICE) == b"OK"
        await group.wait_for_primary(group.replica.port)

        async def demoted() -> bool:
            return await group.role(group.primary.port) == "slave"

        await wait_until(demoted, "the old primary is a replica")
        await asyncio.gather(*(client.set(f"moved:{n}", n) for n in range(4)))
        stored = await ask(group.replica.port, "MGET", *(f"moved:{n}" for n in range(4)))
        assert stored == [b"0", b"1", b"2", b"3"]
    finally:
        await client.aclose()


async def test_a_burst_through_the_sentinel_pool_waits_for_its_connections(group: SentinelGroup) -> None:
    client = bounded_redis(group.url, max_connections=2, wait_seconds=WAIT, client_name="sentinel-burst")
    try:
        await asyncio.gather(*(client.incr("counted") for _ in range(200)))
        assert await client.get("counted") == b"200"
        assert await connections_named(f"redis://127.0.0.1:{group.primary.port}/0", "sentinel-burst") <= 2
    finally:
        await client.aclose()


async def test_closing_the_client_closes_its_sentinel_connections(group: SentinelGroup) -> None:
    async def sentinel_clients() -> int:
        listed: str = (await ask(group.sentinel.port, "CLIENT", "LIST")).decode()
        return len(listed.splitlines()) - 1  # the asking connection itself

    alone = await sentinel_clients()
    client = bounded_redis(group.url, max_connections=2, wait_seconds=WAIT, client_name="sentinel-close")
    await client.set("k", "v")
    assert await sentinel_clients() > alone
    await client.aclose()

    async def closed() -> bool:
        return await sentinel_clients() == alone

    await wait_until(closed, "the sentinel's connections from the client are closed")


async def test_broker_subscribers_resync_and_hear_new_messages_after_a_failover(group: SentinelGroup) -> None:
    prefix = f"test-{uuid.uuid4().hex[:8]}:"
    publisher = bounded_redis(group.url, max_connections=4, wait_seconds=WAIT, client_name=f"{prefix}app")
    broker = RedisBroker(publisher, group.url, prefix, queue_size=4)
    try:
        async with broker.subscribe("order:f") as messages:
            await broker.publish("order:f", {"n": 1})
            assert await asyncio.wait_for(anext(messages), WAIT) == {"n": 1}
            await group.ready_to_fail_over()
            group.primary.stop()
            await group.wait_for_primary(group.replica.port)
            # Whatever was published while no primary answered is lost: the subscriber must re-read.
            assert await asyncio.wait_for(anext(messages), WAIT) == {"channel": "order:f", "resync": True}
            await broker.publish("order:f", {"n": 2})
            assert await asyncio.wait_for(anext(messages), WAIT) == {"n": 2}
    finally:
        await broker.aclose()
        await publisher.aclose()
