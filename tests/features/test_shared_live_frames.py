"""Live updates are executed once per (document, variables, caller) and row version, whatever the
number of subscribers: over real websockets, with the executions counted in graphql-core itself.
Different documents, variables or callers never share a result, and a caller who may not see the
order receives nothing of it. A later version is written to every waiting subscriber by the one task
that executed it, without waking the others' tasks; a socket that takes no frame holds back no one
and its subscriber is dropped as before."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware

from db.models import Order
from payql import tracing
from payql.live_frames import LiveFramesHandler
from payql.wiring import Services
from resolvers.live_stream import DirectLane
from resolvers.order_status import order_channel
from schema.shared_frames import SharedLiveExecution
from schema.types import OrderType, PaymentType
from tests.testkit import CHECKOUT, PAY_ORDER, Shopper, checkout_input, make_price, new_key
from tests.wsclient import GraphQLWebSocket, graphql_ws

WAIT = 30.0
STATUS = "subscription($id: ID!) { orderStatus(orderId: $id) { id status updatedAt } }"
TOTAL = "subscription($id: ID!) { orderStatus(orderId: $id) { status updatedAt total { amount } } }"
MAYBE_TOTAL = """subscription($id: ID!, $withTotal: Boolean!) {
  orderStatus(orderId: $id) { status updatedAt total @include(if: $withTotal) { amount } } }"""
LEDGER = """subscription($id: ID!) {
  orderStatus(orderId: $id) { status updatedAt payments { ledgerEvents { type } } } }"""


class Executions:
    """Counts graphql-core's executions of a live event of one order, below PayQL's sharing."""

    def __init__(self, order_id: str) -> None:
        self.order_id = UUID(order_id)
        self.count = 0


@pytest.fixture
def executions(services: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Executions]]:
    monkeypatch.setattr(services.live_slots, "_cap", 100)  # more subscribers per caller than by default
    # The executor PayQL's sharing falls through to: what runs the selection set.
    below: Any = next(cls for cls in SharedLiveExecution.__mro__[1:] if "execute_operation" in vars(cls))
    original = below.execute_operation
    counters: list[Executions] = []

    def counting(self: Any, serially: bool | None = None) -> Any:
        root = self.root_value
        for counter in counters:
            if serially is False and isinstance(root, OrderType) and root.order_id == counter.order_id:
                counter.count += 1
        return original(self, serially)

    monkeypatch.setattr(below, "execute_operation", counting)

    def count(order_id: str) -> Executions:
        counters.append(Executions(order_id))
        return counters[-1]

    yield count


class Subscriber:
    """One operation on a socket: every message it got, until it completes or errs."""

    def __init__(self, query: str, variables: dict[str, Any]) -> None:
        self.id = uuid.uuid4().hex
        self.query = query
        self.variables = variables
        self.messages: list[dict[str, Any]] = []
        self.done = False

    @property
    def nexts(self) -> list[dict[str, Any]]:
        return [message["payload"] for message in self.messages if message["type"] == "next"]


class Socket:
    def __init__(self, ws: GraphQLWebSocket) -> None:
        self.ws = ws
        self.subscribers: dict[str, Subscriber] = {}
        self.progress = asyncio.Event()

    async def start(self, subscriber: Subscriber) -> Subscriber:
        self.subscribers[subscriber.id] = subscriber
        payload = {"query": subscriber.query, "variables": subscriber.variables}
        await self.ws.connection.send(json.dumps({"id": subscriber.id, "type": "subscribe", "payload": payload}))
        return subscriber

    async def read(self) -> None:
        while not all(subscriber.done for subscriber in self.subscribers.values()):
            message = await self.ws.receive()
            subscriber = self.subscribers[str(message["id"])]
            subscriber.messages.append(message)
            subscriber.done = message["type"] in ("complete", "error")
            self.progress.set()


async def until(sockets: list[Socket], condition: Callable[[], bool]) -> None:
    async def poll() -> None:
        while not condition():
            for socket in sockets:
                socket.progress.clear()
            await asyncio.wait([asyncio.create_task(socket.progress.wait()) for socket in sockets], timeout=1)

    await asyncio.wait_for(poll(), WAIT)


async def stop(readers: list[asyncio.Task[None]]) -> None:
    """The sockets' readers stopped, whatever the test left them doing."""
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)


async def pending_order(shopper: Shopper) -> str:
    """An order that stays PENDING (its card was declined) until it is paid."""
    price = await make_price(1500)
    declined = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_chargeDeclined")}))["checkout"]
    order_id: str = declined["order"]["id"]
    return order_id


async def pay(shopper: Shopper, order_id: str) -> None:
    variables = {"input": {"orderId": order_id, "paymentMethod": "pm_card_visa", "idempotencyKey": new_key()}}
    assert (await shopper.data(PAY_ORDER, variables))["payOrder"]["order"]["status"] == "PAID"


async def run_until_complete(
    sockets: list[Socket], subscribers: list[Subscriber], pay_order: Callable[[], Any]
) -> None:
    """Every subscriber gets its first update, then the order is paid, then every one completes."""
    readers = [asyncio.create_task(socket.read()) for socket in sockets]
    try:
        await until(sockets, lambda: all(subscriber.messages for subscriber in subscribers))
        await pay_order()
        await asyncio.wait_for(asyncio.gather(*readers), WAIT)
    finally:
        await stop(readers)


def versions(subscribers: list[Subscriber]) -> set[tuple[str, str]]:
    return {
        (payload["data"]["orderStatus"]["status"], payload["data"]["orderStatus"]["updatedAt"])
        for subscriber in subscribers
        for payload in subscriber.nexts
    }


async def test_subscribers_of_one_order_with_one_document_share_one_execution_per_version(
    services: Services, server: str, shopper: Shopper, executions: Callable[[str], Executions]
) -> None:
    order_id = await pending_order(shopper)
    executed = executions(order_id)
    async with AsyncExitStack() as stack:
        sockets = [Socket(await stack.enter_async_context(graphql_ws(server, shopper.token))) for _ in range(4)]
        subscribers = [await socket.start(Subscriber(STATUS, {"id": order_id})) for socket in sockets for _ in range(5)]
        await run_until_complete(sockets, subscribers, lambda: pay(shopper, order_id))

    for subscriber in subscribers:
        assert [message["type"] for message in subscriber.messages][-1] == "complete"
        assert all("errors" not in payload for payload in subscriber.nexts)
        statuses = [payload["data"]["orderStatus"]["status"] for payload in subscriber.nexts]
        assert statuses[0] == "PENDING" and statuses[-1] == "PAID"
        assert {payload["data"]["orderStatus"]["id"] for payload in subscriber.nexts} == {order_id}
    # 20 subscribers, and the selection set ran once per version they were sent, not once each.
    assert executed.count == len(versions(subscribers))


async def test_different_documents_or_variables_never_share_a_result(
    services: Services, server: str, shopper: Shopper, executions: Callable[[str], Executions]
) -> None:
    order_id = await pending_order(shopper)
    executed = executions(order_id)
    asked: dict[str, tuple[str, dict[str, Any]]] = {
        "status": (STATUS, {"id": order_id}),
        "total": (TOTAL, {"id": order_id}),
        "with total": (MAYBE_TOTAL, {"id": order_id, "withTotal": True}),
        "without total": (MAYBE_TOTAL, {"id": order_id, "withTotal": False}),
    }
    expected_fields = {
        "status": {"id", "status", "updatedAt"},
        "total": {"status", "updatedAt", "total"},
        "with total": {"status", "updatedAt", "total"},
        "without total": {"status", "updatedAt"},
    }
    async with AsyncExitStack() as stack:
        sockets = [Socket(await stack.enter_async_context(graphql_ws(server, shopper.token))) for _ in range(2)]
        subscribers = {
            name: [await socket.start(Subscriber(query, variables)) for socket in sockets for _ in range(3)]
            for name, (query, variables) in asked.items()
        }
        everyone = [subscriber for group in subscribers.values() for subscriber in group]
        await run_until_complete(sockets, everyone, lambda: pay(shopper, order_id))

    for name, group in subscribers.items():
        for subscriber in group:
            assert subscriber.nexts and all("errors" not in payload for payload in subscriber.nexts)
            for payload in subscriber.nexts:
                assert set(payload["data"]["orderStatus"]) == expected_fields[name], name
    # One execution per version for each of the 4 (document, variables), each shared by its 6.
    assert executed.count == sum(len(versions(group)) for group in subscribers.values())


async def test_a_caller_gets_only_what_it_may_see_and_an_outsider_nothing(
    services: Services,
    server: str,
    shopper: Shopper,
    other_shopper: Shopper,
    admin: Shopper,
    executions: Callable[[str], Executions],
) -> None:
    order_id = await pending_order(shopper)
    executed = executions(order_id)
    async with AsyncExitStack() as stack:
        owner, staff, outsider = [
            Socket(await stack.enter_async_context(graphql_ws(server, caller.token)))
            for caller in (shopper, admin, other_shopper)
        ]
        owners = [await owner.start(Subscriber(LEDGER, {"id": order_id})) for _ in range(3)]
        staffers = [await staff.start(Subscriber(LEDGER, {"id": order_id})) for _ in range(3)]
        outsiders = [await outsider.start(Subscriber(LEDGER, {"id": order_id})) for _ in range(3)]
        await run_until_complete(
            [owner, staff, outsider], owners + staffers + outsiders, lambda: pay(shopper, order_id)
        )

    for subscriber in outsiders:
        # Refused before joining: the refusal, then the end; never an update of the order.
        assert [message["type"] for message in subscriber.messages] == ["next", "complete"]
        [refusal] = subscriber.nexts
        assert refusal["data"] is None
        assert [error["extensions"]["code"] for error in refusal["errors"]] == ["NOT_FOUND"]
    for subscriber in owners:
        # The same document as staff, executed for the owner: the ledger is refused, every time.
        assert subscriber.nexts and subscriber.messages[-1]["type"] == "complete"
        for payload in subscriber.nexts:
            assert {error["extensions"]["code"] for error in payload["errors"]} == {"FORBIDDEN"}
            assert all(payment["ledgerEvents"] is None for payment in payload["data"]["orderStatus"]["payments"])
    for subscriber in staffers:
        assert subscriber.nexts and subscriber.messages[-1]["type"] == "complete"
        for payload in subscriber.nexts:
            assert "errors" not in payload
            assert all(payment["ledgerEvents"] for payment in payload["data"]["orderStatus"]["payments"])
    # Staff share one execution per version; a result with errors is never shared, so each of the
    # owner's subscribers executes its own; the outsider, none.
    assert executed.count == len(versions(owners)) * len(owners) + len(versions(staffers))


async def test_an_unexpected_error_reaches_each_subscriber_masked(
    services: Services, server: str, shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    order_id = await pending_order(shopper)

    def broken(_payment: object) -> object:
        raise RuntimeError("internal detail")

    monkeypatch.setattr(PaymentType, "from_model", broken)
    query = "subscription($id: ID!) { orderStatus(orderId: $id) { status payments { id } } }"
    async with graphql_ws(server, shopper.token) as ws:
        socket = Socket(ws)
        subscribers = [await socket.start(Subscriber(query, {"id": order_id})) for _ in range(3)]
        reader = asyncio.create_task(socket.read())
        try:
            await until([socket], lambda: all(subscriber.messages for subscriber in subscribers))
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)

    for subscriber in subscribers:
        [first] = subscriber.nexts[:1]
        # The non-null list nulls the whole update; the error says nothing of its cause.
        assert first["data"] is None
        assert [error["message"] for error in first["errors"]] == ["Unexpected error."]
        assert "internal detail" not in json.dumps(subscriber.messages)


async def test_an_error_free_shared_version_takes_no_per_subscriber_pass_through_graphql(
    services: Services, server: str, shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.live_slots, "_cap", 100)
    order_id = await pending_order(shopper)
    # Every version a subscriber pulls through Strawberry and graphql-core asks for an executor.
    passes: list[str] = []
    original = SharedLiveExecution.build_per_event_executor

    def counting(self: SharedLiveExecution, payload: Any) -> Any:
        if isinstance(payload, OrderType) and str(payload.order_id) == order_id:
            passes.append(str(payload.status))
        return original(self, payload)

    monkeypatch.setattr(SharedLiveExecution, "build_per_event_executor", counting)
    async with AsyncExitStack() as stack:
        sockets = [Socket(await stack.enter_async_context(graphql_ws(server, shopper.token))) for _ in range(4)]
        subscribers = [await socket.start(Subscriber(STATUS, {"id": order_id})) for socket in sockets for _ in range(5)]
        await run_until_complete(sockets, subscribers, lambda: pay(shopper, order_id))

    later = versions(subscribers) - {version for version in versions(subscribers) if version[0] == "PENDING"}
    assert later
    for subscriber in subscribers:
        assert [message["type"] for message in subscriber.messages][-1] == "complete"
        assert all("errors" not in payload for payload in subscriber.nexts)
        assert {version for version in versions([subscriber]) if version[0] != "PENDING"} == later
        assert all(message["id"] == subscriber.id for message in subscriber.messages)
    # Each subscriber's first update goes through graphql once; every later version goes through it
    # once for all 20 (the subscriber that executes it), and is written straight to the 19 others.
    assert len([status for status in passes if status != "PENDING"]) == len(later)


async def touch(services: Services, order_id: str) -> None:
    """A new version of the order (its update time moves on), announced as a commit announces it."""
    await Order.filter(id=order_id).update(updated_at=datetime.now(UTC))
    await services.broker.publish(order_channel(UUID(order_id)), {"channel": order_channel(UUID(order_id))})


def updated_ats(subscriber: Subscriber) -> list[str]:
    return [payload["data"]["orderStatus"]["updatedAt"] for payload in subscriber.nexts]


async def test_a_later_version_is_written_to_every_other_subscriber_from_one_task_without_waking_theirs(
    services: Services, server: str, shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.live_slots, "_cap", 100)
    order_id = await pending_order(shopper)
    woken: list[DirectLane] = []  # a subscriber's task woken from waiting on its lane
    written: list[DirectLane] = []  # a frame written to a subscriber by another subscriber's task
    park, write_now = DirectLane._park, DirectLane._write_now

    async def counting_park(self: DirectLane) -> None:
        await park(self)
        woken.append(self)

    def counting_write_now(self: DirectLane, frame: str) -> None:
        written.append(self)
        write_now(self, frame)

    monkeypatch.setattr(DirectLane, "_park", counting_park)
    monkeypatch.setattr(DirectLane, "_write_now", counting_write_now)
    async with AsyncExitStack() as stack:
        sockets = [Socket(await stack.enter_async_context(graphql_ws(server, shopper.token))) for _ in range(4)]
        subscribers = [await socket.start(Subscriber(STATUS, {"id": order_id})) for socket in sockets for _ in range(5)]
        readers = [asyncio.create_task(socket.read()) for socket in sockets]
        try:
            await until(sockets, lambda: all(len(subscriber.nexts) == 1 for subscriber in subscribers))
            for version in range(2, 5):
                woken.clear()
                written.clear()
                await touch(services, order_id)
                await until(sockets, lambda: all(len(s.nexts) == version for s in subscribers))  # noqa: B023
                # One task woken, to execute the version; the 19 others were written to by it.
                assert len(woken) == 1
                assert len(written) == len(set(written)) == len(subscribers) - 1
                assert woken[0] not in written
            await pay(shopper, order_id)
            await asyncio.wait_for(asyncio.gather(*readers), WAIT)
        finally:
            await stop(readers)

    for subscriber in subscribers:
        assert [message["type"] for message in subscriber.messages][-1] == "complete"
        assert all(message["id"] == subscriber.id for message in subscriber.messages)
        # Every version, each once, in the order they were made.
        assert updated_ats(subscriber) == sorted(set(updated_ats(subscriber)))
        assert updated_ats(subscriber) == updated_ats(subscribers[0])
        assert subscriber.nexts[-1]["data"]["orderStatus"]["status"] == "PAID"


async def test_a_socket_that_takes_no_frame_holds_back_no_other_subscriber_and_is_dropped(
    services: Services, server: str, shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.live_slots, "_cap", 100)
    monkeypatch.setattr(services.live_streams, "_queue_size", 2)
    order_id = await pending_order(shopper)
    drained = asyncio.Event()
    stuck: set[str] = set()  # operation ids whose socket takes no frame until it is drained
    send_text = LiveFramesHandler._send_text

    async def stalling_send_text(self: LiveFramesHandler, frame: str) -> None:
        if json.loads(frame)["id"] in stuck:
            await drained.wait()
        await send_text(self, frame)

    monkeypatch.setattr(LiveFramesHandler, "_send_text", stalling_send_text)
    async with AsyncExitStack() as stack:
        sockets = [Socket(await stack.enter_async_context(graphql_ws(server, shopper.token))) for _ in range(5)]
        readers: list[asyncio.Task[None]] = []

        async def subscribe(socket: Socket) -> Subscriber:
            subscriber = await socket.start(Subscriber(STATUS, {"id": order_id}))
            readers.append(asyncio.create_task(socket.read()))
            await until(sockets, lambda: len(subscriber.nexts) == 1)
            return subscriber

        try:
            # One by one, so that the first to wait is the one woken to execute the next version
            # (its own send then stalls, after it handed the version out), and the last to wait is
            # written to by another subscriber's task (that send stalls and is handed back to it).
            lead = await subscribe(sockets[0])
            others = [await subscribe(socket) for socket in sockets[1:-1]]
            slow = await subscribe(sockets[-1])
            stuck.update({lead.id, slow.id})
            for version in range(2, 7):
                await touch(services, order_id)
                await until(sockets, lambda: all(len(other.nexts) == version for other in others))  # noqa: B023
            assert len(lead.messages) == len(slow.messages) == 1
            drained.set()
            await until(sockets, lambda: lead.done and slow.done)
            await pay(shopper, order_id)
            await asyncio.wait_for(asyncio.gather(*readers), WAIT)
        finally:
            await stop(readers)

    for other in others:
        assert [message["type"] for message in other.messages][-1] == "complete"
        assert updated_ats(other) == sorted(set(updated_ats(other))) == updated_ats(others[0])
        assert len(other.nexts) > 6 and other.nexts[-1]["data"]["orderStatus"]["status"] == "PAID"
    for stalled in (lead, slow):
        # The frame its socket could not take went out once it drained, in order; then, its queue
        # having overflowed meanwhile, the drop, and the end.
        assert [message["type"] for message in stalled.messages] == ["next", "next", "next", "complete"]
        first, second, dropped = stalled.nexts
        assert [first, second] == others[0].nexts[:2]
        assert dropped["data"] is None
        assert [error["extensions"]["code"] for error in dropped["errors"]] == ["RATE_LIMITED"]


async def test_shared_frames_take_the_servers_own_send_and_every_other_message_the_layers(
    services: Services, server: str, shopper: Shopper, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services.live_slots, "_cap", 100)
    order_id = await pending_order(shopper)
    through_layers: list[dict[str, Any]] = []  # websocket messages the tracing layer's send saw
    wrap: Any = OpenTelemetryMiddleware._get_otel_send

    def watching_send(self: OpenTelemetryMiddleware, *args: Any) -> Any:
        wrapped = wrap(self, *args)

        async def otel_send(message: dict[str, Any]) -> None:
            if message["type"] == "websocket.send":
                through_layers.append(json.loads(message["text"]))
            await wrapped(message)

        return otel_send

    monkeypatch.setattr(OpenTelemetryMiddleware, "_get_otel_send", watching_send)
    # The layer watched here wraps a socket's send only while tracing is on (`ServerSpansWhenTracing`).
    monkeypatch.setattr(tracing, "sdk_installed", lambda: True)
    async with graphql_ws(server, shopper.token) as ws:
        socket = Socket(ws)
        subscribers = [await socket.start(Subscriber(STATUS, {"id": order_id})) for _ in range(3)]
        await run_until_complete([socket], subscribers, lambda: pay(shopper, order_id))

    for subscriber in subscribers:
        assert len(subscriber.nexts) > 1 and subscriber.messages[-1]["type"] == "complete"
    # The updates went out around the layers; the completions (and the socket's own messages) through them.
    assert [message["type"] for message in through_layers if "id" in message] == ["complete"] * len(subscribers)
