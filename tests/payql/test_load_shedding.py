"""Load shedding: past the in-flight limit, /graphql answers 503 with Retry-After at once; health
checks and webhooks are never shed; a shed request never reaches the app."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

from payql.load_shedding import InFlightLimit, LoadShedding

WAIT = 10.0


class HeldApp:
    """Answers 200 once released; counts the requests it saw."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.seen = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.seen += 1
        self.entered.set()
        await self.release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def test_past_the_limit_a_request_is_refused_at_once_with_retry_after() -> None:
    held = HeldApp()
    gate = InFlightLimit(1)
    transport = httpx.ASGITransport(app=LoadShedding(held, gate))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        first = asyncio.create_task(client.post("/graphql"))
        await held.entered.wait()
        # Bounded: were it let in, it would wait on the held request forever.
        refused = await asyncio.wait_for(client.post("/graphql"), WAIT)
        assert refused.status_code == 503
        assert refused.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert int(refused.headers["retry-after"]) >= 1
        assert held.seen == 1  # the refused request never reached the app
        held.release.set()
        assert (await first).status_code == 200
        assert (await client.post("/graphql")).status_code == 200  # room again once the first left
    assert gate.in_flight == 0
    assert gate.shed == 1


async def test_the_server_sheds_graphql_but_never_health_checks(
    app: Starlette, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    gate: InFlightLimit = app.state.in_flight
    monkeypatch.setattr(gate, "limit", 0)
    origin = "https://shop.example"  # allowed by the test server's CORS settings
    refused = await http.post("/graphql", json={"query": "{ gateways }"}, headers={"origin": origin})
    assert refused.status_code == 503
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["access-control-allow-origin"] == origin  # a browser can read the refusal
    assert (await http.get("/healthz")).status_code == 200
    assert (await http.get("/readyz")).status_code == 200
    # A gateway's webhook is answered on its merits (here: unsigned, so refused), never shed.
    assert (await http.post("/webhooks/sandbox", content=b"{}")).status_code not in (503, 429)
