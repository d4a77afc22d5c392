"""The checkout floor (`bench/checkout_floor.py`) runs the statements a PayQL checkout runs, its receipt's
included: `bench.checkout`'s ratio measures PayQL's overhead on the same database work only while the
two agree. A statement added to (or taken from) the checkout fails this test until the floor follows.

Statements are compared by kind (the verb and the table), as a multiset: the floor's SQL is written out
by hand, PayQL's built by the ORM."""

from __future__ import annotations

import asyncio
import contextvars
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import pytest
from starlette.requests import Request

from bench import checkout as checkout_bench
from bench import checkout_floor
from bench.floor_pool import open_floor_pool
from db import merchant_events
from db.models import OutboxMessage, OutboxStatus
from payql.request_context import current_request_id
from payql.wiring import Services
from tests.backends import Backend
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price, sandbox_webhooks_held, settle

_floor_running: contextvars.ContextVar[bool] = contextvars.ContextVar("floor_running", default=False)
_CLAUSE_AFTER = {"INSERT": "INTO", "SELECT": "FROM", "DELETE": "FROM"}


def kind(statement: str) -> str:
    """ "INSERT orders", "SELECT payments", "BEGIN": a statement's verb and the first table it names."""
    words = statement.replace('"', " ").replace(";", " ").replace("(", " ").split()
    verb = words[0].upper()
    if verb == "UPDATE":
        return f"UPDATE {words[1]}"
    upper = [word.upper() for word in words]
    if verb not in _CLAUSE_AFTER or _CLAUSE_AFTER[verb] not in upper:
        return verb
    return f"{verb} {words[upper.index(_CLAUSE_AFTER[verb]) + 1]}"


# A statement's kind, its arguments as text, and whether it was sent by the work being watched.
Sent = tuple[str, tuple[str, ...], bool]


@contextmanager
def statements_sent(watched: Callable[[], bool]) -> Iterator[list[Sent]]:
    """Every statement sent through asyncpg in the block."""
    seen: list[Sent] = []
    execute, run, run_many = asyncpg.Connection.execute, asyncpg.Connection._execute, asyncpg.Connection._executemany

    async def recorded(self: asyncpg.Connection, query: str, args: Any, *rest: Any, **kwargs: Any) -> Any:
        seen.append((kind(query), tuple(str(arg) for arg in args), watched()))
        return await run(self, query, args, *rest, **kwargs)

    async def recorded_many(self: asyncpg.Connection, query: str, *rest: Any, **kwargs: Any) -> Any:
        seen.append((kind(query), (), watched()))
        return await run_many(self, query, *rest, **kwargs)

    async def recorded_execute(self: asyncpg.Connection, query: str, *args: Any, **kwargs: Any) -> Any:
        # Without arguments, asyncpg sends a simple query (BEGIN, COMMIT) without `_execute`.
        if not args:
            seen.append((kind(query), (), watched()))
        return await execute(self, query, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patched:
        patched.setattr(asyncpg.Connection, "_execute", recorded)
        patched.setattr(asyncpg.Connection, "_executemany", recorded_many)
        patched.setattr(asyncpg.Connection, "execute", recorded_execute)
        yield seen


async def receipt_sent(order_id: str) -> OutboxMessage:
    """The order's receipt, once its job has marked it sent (the sandbox's held webhooks keep `settle` from
    returning meanwhile)."""

    async def sent() -> OutboxMessage:
        while True:
            message = await OutboxMessage.get_or_none(dedupe_key=f"receipt:{order_id}")
            if message is not None and message.status == OutboxStatus.SENT:
                return message
            await asyncio.sleep(0.02)

    return await asyncio.wait_for(sent(), 60)


def floor_request(price_id: str) -> Request:
    body = json.dumps({"priceId": price_id, "idempotencyKey": str(uuid.uuid4())}).encode()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request({"type": "http", "method": "POST", "path": "/checkout", "headers": []}, receive)


def test_kinds() -> None:
    assert kind('INSERT INTO "orders" ("id") VALUES ($1)') == "INSERT orders"
    assert kind("SELECT a FROM orders WHERE id = (SELECT order_id FROM payments) FOR UPDATE") == "SELECT orders"
    assert kind('UPDATE "payments" SET "status" = $1') == "UPDATE payments"
    assert kind("BEGIN;") == "BEGIN"
    assert kind("SELECT pg_advisory_unlock_all();") == "SELECT"


async def test_the_floor_runs_the_statements_a_checkout_runs(
    shopper: Shopper,
    services: Services,
    backend: Backend,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not backend.is_postgres:
        pytest.skip("the floor is asyncpg on PostgreSQL; proven with PAYQL_TEST_BACKEND=servers")
    # The benchmark's database has no merchant endpoints: a paid order is read for them and announced to
    # none. The test database may hold other tests' endpoints; none of them subscribes here.
    monkeypatch.setattr(merchant_events, "subscribes", lambda *_: False)
    price = await make_price(2500)
    # The shopper's first checkout makes its customer row, as the benchmark's first checkout does.
    assert (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]["userErrors"] == []
    await settle(services)

    request_id = f"floor-{uuid.uuid4().hex}"
    # The sandbox's webhooks held: the benchmark's sandbox delivers none.
    async with sandbox_webhooks_held(services):
        with statements_sent(lambda: current_request_id() == request_id) as sent:
            # The benchmark's own mutation: a test's selects more (the order's lines and payments).
            response = await shopper.http.post(
                "/graphql",
                json={"query": checkout_bench.CHECKOUT, "variables": {"input": checkout_input(price)}},
                headers={"authorization": f"Bearer {shopper.token}", "x-request-id": request_id},
            )
            order = response.json()["data"]["checkout"]["order"]
            assert order["status"] == "PAID"
            message = await receipt_sent(order["id"])
    # The receipt's job runs outside the request (a queue's worker): its statements name the order or,
    # on the outbox, the message first.
    payql = [
        kind
        for kind, args, by_the_request in sent
        if by_the_request
        or order["id"] in args
        or (kind == "UPDATE outbox_messages" and args[:1] == (str(message.id),))
    ]

    monkeypatch.setenv("FLOOR_CUSTOMER", shopper.subject)
    pool = await open_floor_pool(backend.database_url)
    monkeypatch.setitem(checkout_floor.state, "pool", pool)
    try:
        with statements_sent(_floor_running.get) as floor_sent:
            _floor_running.set(True)
            answer = await checkout_floor.checkout(floor_request(str(price.id)))
            _floor_running.set(False)
            await asyncio.gather(*checkout_floor.receipts)
    finally:
        await pool.close()
    floor = [kind for kind, _, by_the_floor in floor_sent if by_the_floor]

    assert json.loads(bytes(answer.body))["order"]["status"] == "PAID"
    assert "UPDATE outbox_messages" in payql, "the receipt's job ran in the measured window"
    checkout = Counter(payql)
    assert checkout == Counter(floor), (
        f"only PayQL's: {checkout - Counter(floor)}; only the floor's: {Counter(floor) - checkout}"
    )
