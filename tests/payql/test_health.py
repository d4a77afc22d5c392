"""/healthz says the process answers; /readyz says its database, and Redis when configured, answer
too (a load balancer sends traffic only to a ready instance), and of one that does not, whether it
failed or did not answer in time. Probes that come while a check runs share it."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from tortoise import connections
from tortoise.exceptions import ConfigurationError

from payql import readiness
from payql.wiring import Services
from tests.backends import Backend
from tests.database_held import holding_the_database
from tests.ports import free_port

# Instead of 3 s: what the tests below wait out.
SHORT_READINESS_SECONDS = 0.3


async def test_ready_names_each_backing_service(http: httpx.AsyncClient, backend: Backend) -> None:
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    expected = {"status": "ok", "database": "ok"} | ({"redis": "ok"} if backend.redis_url else {})
    assert ready.status_code == 200 and ready.json() == expected


async def test_an_unreachable_redis_makes_the_instance_unready(
    http: httpx.AsyncClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    unreachable = Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1)
    monkeypatch.setattr(services, "redis", unreachable)
    try:
        ready = await http.get("/readyz")
    finally:
        await unreachable.aclose()
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": "ok", "redis": "unreachable"}
    assert (await http.get("/healthz")).status_code == 200


async def test_a_database_with_every_connection_held_is_unready_by_timeout(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readiness, "READINESS_TIMEOUT_SECONDS", SHORT_READINESS_SECONDS)
    async with holding_the_database():
        ready = await http.get("/readyz")
        alive = await http.get("/healthz")
    assert ready.status_code == 503
    assert ready.json()["database"] == "timeout"
    assert alive.status_code == 200
    assert (await http.get("/readyz")).status_code == 200  # ready again once they are given back


async def test_a_redis_that_does_not_answer_is_unready_by_timeout(
    http: httpx.AsyncClient, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Redis that takes the connection and never replies: its ping is cut at the readiness timeout."""
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    silent = await asyncio.start_server(hold, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    unanswering = Redis.from_url(f"redis://127.0.0.1:{port}/0", socket_timeout=30)
    monkeypatch.setattr(readiness, "READINESS_TIMEOUT_SECONDS", SHORT_READINESS_SECONDS)
    monkeypatch.setattr(services, "redis", unanswering)
    try:
        ready = await http.get("/readyz")
    finally:
        await unanswering.aclose()
        for writer in accepted:
            writer.close()
        silent.close()
        await silent.wait_closed()
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": "ok", "redis": "timeout"}


async def test_probes_that_come_while_a_check_runs_share_it(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of probes while the database is held: one SELECT 1 waits on it, not one a probe."""
    # Long enough for every probe below to arrive while the first one's check waits.
    monkeypatch.setattr(readiness, "READINESS_TIMEOUT_SECONDS", 2.0)
    client = connections.get("default")
    sent: list[str] = []
    execute_query = client.execute_query

    async def counted(query: str, values: list[Any] | None = None) -> Any:
        sent.append(query)
        return await execute_query(query, values)

    async with holding_the_database():
        monkeypatch.setattr(client, "execute_query", counted)  # the probes' statements, not the hold's
        probes = await asyncio.gather(*(http.get("/readyz") for _ in range(20)))
    assert [probe.json()["database"] for probe in probes] == ["timeout"] * 20
    assert sent.count("SELECT 1") == 1
    assert (await http.get("/readyz")).status_code == 200  # a check after that one ended is a new one
    assert sent.count("SELECT 1") == 2


class ClosedConnections:
    """Tortoise's connections once `close_database` ran, as a probe during shutdown finds them."""

    def get(self, name: str) -> None:
        raise ConfigurationError(f"Unable to get db settings for alias '{name}'")


async def test_a_database_whose_connections_are_closed_is_unreachable_not_an_error(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(readiness, "connections", ClosedConnections())
    ready = await http.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["database"] == "unreachable"
