"""/healthz says the process answers; /readyz says its database, and Redis when configured, answer
too (a load balancer sends traffic only to a ready instance)."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from payql.wiring import Services
from tests.backends import Backend
from tests.ports import free_port


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
