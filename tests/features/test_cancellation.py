"""Clients that go away mid-mutation cannot freeze PayQL or leak from it (issue #11, finding 1).

Hundreds of checkouts are cancelled at spread-out moments: over graphql-transport-ws by `complete`
or by closing the socket, and over HTTP by closing the connection before the answer. While they run
on, /healthz answers; afterwards a checkout succeeds at once, /readyz answers 200, no lock, pooled
connection or transaction is held, and on PostgreSQL the number of backends on the test database is
back to what it was.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from functools import partial
from urllib.parse import urlsplit

import asyncpg
import httpx

from db.models import LineItem, Price
from domain.statuses import OrderStatus, PaymentStatus
from payql.wiring import Services
from schema.run_to_completion import finish_mutations
from tests.backends import Backend
from tests.database_held import BOUND_SECONDS, assert_nothing_held, within_bound
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price, settle
from tests.wsclient import GraphQLWebSocket, graphql_ws

WS_COMPLETES = 150  # `complete` sent on a socket that stays open
WS_CLOSES = 60  # the socket closed instead
HTTP_CLOSES = 150
PARALLEL = 10
# A bound on the time the cancelled checkouts take to run to their end.
BACKLOG_SECONDS = 90
# Moments of cancellation, spread over the life of a checkout (a few to tens of milliseconds).
DELAYS_MS = [(index * 7) % 61 for index in range(max(WS_COMPLETES, WS_CLOSES, HTTP_CLOSES))]


async def in_parallel(jobs: Sequence[Callable[[], Awaitable[None]]]) -> None:
    gate = asyncio.Semaphore(PARALLEL)

    async def run(job: Callable[[], Awaitable[None]]) -> None:
        async with gate:
            await job()

    await asyncio.gather(*(run(job) for job in jobs))


def subscribe_message(operation_id: str, price: Price) -> str:
    payload = {"query": CHECKOUT, "variables": {"input": checkout_input(price)}}
    return json.dumps({"id": operation_id, "type": "subscribe", "payload": payload})


@asynccontextmanager
async def drained(ws: GraphQLWebSocket) -> AsyncIterator[GraphQLWebSocket]:
    """Read and drop what the server sends, so that its answers never back up on the socket."""

    async def drain() -> None:
        async for _ in ws.connection:
            pass

    reader = asyncio.create_task(drain())
    try:
        yield ws
    finally:
        reader.cancel()
        await asyncio.gather(reader, return_exceptions=True)


async def cancel_over_one_socket(server: str, shopper: Shopper, price: Price, delays_ms: list[int]) -> None:
    """Checkouts on one socket, each cancelled by `complete` after its delay."""
    async with graphql_ws(server, shopper.token) as ws, drained(ws):
        for delay_ms in delays_ms:
            operation_id = uuid.uuid4().hex
            await ws.connection.send(subscribe_message(operation_id, price))
            await asyncio.sleep(delay_ms / 1000)  # the moment of the cancellation, not a synchronization
            await ws.connection.send(json.dumps({"id": operation_id, "type": "complete"}))


async def close_socket_mid_checkout(server: str, shopper: Shopper, price: Price, delay_ms: int) -> None:
    async with graphql_ws(server, shopper.token) as ws:
        await ws.connection.send(subscribe_message(uuid.uuid4().hex, price))
        await asyncio.sleep(delay_ms / 1000)  # the moment of the cancellation, not a synchronization


async def close_http_mid_checkout(server: str, shopper: Shopper, price: Price, delay_ms: int) -> None:
    address = urlsplit(server)
    body = json.dumps({"query": CHECKOUT, "variables": {"input": checkout_input(price)}}).encode()
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: {address.netloc}\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {shopper.token}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    _, writer = await asyncio.open_connection(address.hostname, address.port)
    writer.write(head + body)
    await writer.drain()
    await asyncio.sleep(delay_ms / 1000)  # the moment of the cancellation, not a synchronization
    writer.close()
    await writer.wait_closed()


async def backends_on(backend: Backend) -> tuple[int, int]:
    """(backends connected to the test database, those inside a transaction)."""
    assert backend.admin_postgres_url is not None
    admin = await asyncpg.connect(backend.admin_postgres_url.replace("postgres://", "postgresql://", 1))
    try:
        row = await admin.fetchrow(
            "SELECT count(*) AS connected, count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS open "
            "FROM pg_stat_activity WHERE datname = $1",
            backend.database_name,
        )
    finally:
        await admin.close()
    assert row is not None
    return int(row["connected"]), int(row["open"])


async def back_to(backend: Backend, baseline: int) -> None:
    """Poll until the test database has `baseline` backends and none inside a transaction."""

    async def poll() -> None:
        while await backends_on(backend) != (baseline, 0):
            await asyncio.sleep(0.05)

    try:
        await asyncio.wait_for(poll(), BOUND_SECONDS)
    except TimeoutError:
        raise AssertionError(f"backends {await backends_on(backend)}, expected ({baseline}, 0)") from None


async def test_cancelled_checkouts_leave_the_server_answering_and_nothing_held(
    server: str, backend: Backend, services: Services, http: httpx.AsyncClient, shopper: Shopper
) -> None:
    price = await make_price(700)
    # Every pooled connection opened first: the pool grows up to its size under load, and stays so.
    await assert_nothing_held()
    baseline = (await backends_on(backend))[0] if backend.is_postgres else 0

    per_socket = WS_COMPLETES // PARALLEL
    await in_parallel(
        [
            partial(cancel_over_one_socket, server, shopper, price, DELAYS_MS[start : start + per_socket])
            for start in range(0, WS_COMPLETES, per_socket)
        ]
        + [partial(close_socket_mid_checkout, server, shopper, price, delay) for delay in DELAYS_MS[:WS_CLOSES]]
        + [partial(close_http_mid_checkout, server, shopper, price, delay) for delay in DELAYS_MS[:HTTP_CLOSES]]
    )

    # Not frozen while the cancelled checkouts run on: it answers within the bound. Its readiness waits for them:
    # /readyz's SELECT 1 queues behind their pool checkouts, past its 3 s on a loaded machine (a 503 then).
    alive = await within_bound(http.get("/healthz"), "/healthz answering")
    assert alive.status_code == 200
    # The cancelled checkouts run on to their end (a few hundred, on a machine that runs the
    # server and the clients together); none is left for shutdown to cancel.
    assert await finish_mutations(BACKLOG_SECONDS) == 0
    ready = await within_bound(http.get("/readyz"), "/readyz answering")
    assert ready.status_code == 200
    paid = await within_bound(shopper.data(CHECKOUT, {"input": checkout_input(price)}), "a checkout")
    assert paid["checkout"]["payment"]["status"] == "PAID"
    await assert_nothing_held()
    if backend.is_postgres:
        await back_to(backend, baseline)
    # Their webhooks and jobs too: the next test starts on a quiet server.
    await settle(services, timeout=BACKLOG_SECONDS)


async def test_each_cancelled_checkout_ran_to_its_end(server: str, shopper: Shopper) -> None:
    """What the cancelled checkouts of one socket did: every one that reached the server is a paid
    order (none half-made: a PENDING order without a settled payment would be torn work)."""
    price = await make_price(650)
    await cancel_over_one_socket(server, shopper, price, DELAYS_MS[:20])
    assert await finish_mutations(BOUND_SECONDS) == 0

    line_items = await LineItem.filter(price_id=price.id).prefetch_related("order__payments")
    assert line_items
    for line_item in line_items:
        assert line_item.order.status is OrderStatus.PAID
        assert [payment.status for payment in line_item.order.payments] == [PaymentStatus.PAID]
