"""The sandbox's webhook deliverer against a real HTTP receiver (uvicorn on a random local port in the
test loop): signed at-least-once delivery, retries, durability across restarts, and the test switches."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from domain.money import Money
from domain.statuses import CaptureMethod, PaymentStatus
from gateways.sandbox import SandboxGateway
from gateways.sandbox.processor import SandboxProcessor, WebhookDeliverer, sandbox_routes
from gateways.types import ChargeRequest, PaymentObserved, WebhookDelivery
from tests.asgi_server import serving as serve_app
from tests.gateways.sandbox_access import STAFF_HEADERS, guard_for_tests

REPO = Path(__file__).resolve().parents[4]
SECRET = "whsec_delivery_test"
TIMEOUT = 10


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]
    body: bytes
    received_at: int
    at: float  # the event loop's clock
    status: int

    @property
    def event(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.body)
        return value

    def as_delivery(self) -> WebhookDelivery:
        return WebhookDelivery(headers=self.headers, body=self.body, received_at=self.received_at)


class Receiver:
    """Records every POST; answers 500 to the next `fail_next` (or to all, with `fail_always`)."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.fail_next = 0
        self.fail_always = False
        self.gate: asyncio.Event | None = None  # when given, requests wait until it is set
        self.url = ""

    async def endpoint(self, request: Request) -> Response:
        body = await request.body()
        if self.gate is not None:
            await self.gate.wait()
        status = 200
        if self.fail_always or self.fail_next > 0:
            self.fail_next = max(0, self.fail_next - 1)
            status = 500
        headers = {name.lower(): value for name, value in request.headers.items()}
        loop_time = asyncio.get_running_loop().time()
        self.requests.append(Received(headers, body, int(time.time()), loop_time, status))
        return Response(status_code=status)

    def accepted(self) -> list[Received]:
        return [r for r in self.requests if r.status == 200]

    def accepted_types(self) -> list[str]:
        return [r.event["type"] for r in self.accepted()]


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serving(receiver: Receiver) -> AsyncIterator[str]:
    app = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    async with serve_app(app) as base_url:
        yield f"{base_url}/hook"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiving = Receiver()
    async with serving(receiving) as url:
        receiving.url = url
        yield receiving
        if receiving.gate is not None:
            receiving.gate.set()


@pytest.fixture
def processor() -> SandboxProcessor:
    return SandboxProcessor()


def new_deliverer(processor: SandboxProcessor, url: str, **options: Any) -> WebhookDeliverer:
    options = {"base_delay": 0.01, "max_delay": 0.05, **options}
    return WebhookDeliverer(processor, url, SECRET, **options)


@pytest.fixture
async def deliverer(processor: SandboxProcessor, receiver: Receiver) -> AsyncIterator[WebhookDeliverer]:
    delivering = new_deliverer(processor, receiver.url)
    await delivering.start()
    yield delivering
    await delivering.aclose()


@pytest.fixture
def gateway(processor: SandboxProcessor) -> SandboxGateway:
    return SandboxGateway(processor, "https://pay.example.test", webhook_secrets=[SECRET])


async def settle(deliverer: WebhookDeliverer) -> None:
    await asyncio.wait_for(deliverer.idle(), TIMEOUT)


async def charge(processor: SandboxProcessor, key: str, *, manual: bool = False) -> str:
    intent = await processor.create_payment_intent(
        amount=1500,
        currency="USD",
        payment_method="pm_card_visa",
        idempotency_key=key,
        capture_method="manual" if manual else "automatic",
        metadata={"payql_payment_id": f"pay_{key}", "payql_order_id": f"ord_{key}"},
    )
    return intent.id


async def event_ids(processor: SandboxProcessor) -> list[str]:
    return [str(event["id"]) for event in await processor.list_events()]


# -- delivery --------------------------------------------------------------------------------------


async def test_a_charge_is_delivered_as_a_signed_verifiable_webhook(
    gateway: SandboxGateway, processor: SandboxProcessor, deliverer: WebhookDeliverer, receiver: Receiver
) -> None:
    paid = await gateway.charge(
        ChargeRequest(
            amount=Money(1500, "USD"),
            payment_method="pm_card_visa",
            capture_method=CaptureMethod.AUTOMATIC,
            idempotency_key="k-verify",
            metadata={"payql_payment_id": "pay_verify", "payql_order_id": "ord_verify"},
        )
    )
    await settle(deliverer)

    assert receiver.accepted_types() == ["payment_intent.created", "payment_intent.succeeded"]
    assert [r.event for r in receiver.accepted()] == await processor.list_events()
    for received in receiver.accepted():
        assert received.headers["content-type"] == "application/json"
        assert received.headers["stripe-signature"].startswith("t=")
    verified = await gateway.verify_webhook(receiver.accepted()[1].as_delivery())
    effects = gateway.interpret_event(verified)
    assert len(effects) == 1 and isinstance(effects[0], PaymentObserved)
    result = effects[0].result
    assert (result.reference, result.status, result.payql_payment_id) == (
        paid.reference,
        PaymentStatus.PAID,
        "pay_verify",
    )
    assert await processor.unacknowledged_events() == []


async def test_nothing_is_sent_inside_the_processor_call(
    processor: SandboxProcessor, deliverer: WebhookDeliverer, receiver: Receiver
) -> None:
    receiver.gate = asyncio.Event()  # the endpoint hangs: a delivery inside the call would hang the call

    await asyncio.wait_for(charge(processor, "k-async"), TIMEOUT)

    assert receiver.requests == []
    assert deliverer.status()["pending"] == 2
    receiver.gate.set()
    await settle(deliverer)
    assert receiver.accepted_types() == ["payment_intent.created", "payment_intent.succeeded"]


async def test_server_errors_are_retried_until_accepted(
    processor: SandboxProcessor, deliverer: WebhookDeliverer, receiver: Receiver
) -> None:
    receiver.fail_next = 3

    await charge(processor, "k-retry")
    await settle(deliverer)

    assert [r.status for r in receiver.requests].count(500) == 3
    ids = await event_ids(processor)
    assert sorted(r.event["id"] for r in receiver.accepted()) == sorted(ids)  # each accepted exactly once
    assert len(receiver.requests) == len(ids) + 3
    for event_id in ids:
        bodies = {r.body for r in receiver.requests if r.event["id"] == event_id}
        assert len(bodies) == 1  # every attempt sends the same serialized body
    assert await processor.unacknowledged_events() == []


async def test_it_gives_up_after_max_attempts_and_keeps_the_event_unacknowledged(
    processor: SandboxProcessor, receiver: Receiver
) -> None:
    receiver.fail_always = True
    delivering = new_deliverer(processor, receiver.url, max_attempts=3)
    await delivering.start()
    try:
        await charge(processor, "k-give-up")
        await settle(delivering)
    finally:
        await delivering.aclose()

    ids = await event_ids(processor)
    assert sorted(r.event["id"] for r in receiver.requests) == sorted(ids * 3)
    assert [event["id"] for event in await processor.unacknowledged_events()] == ids


async def test_connection_errors_are_retried(processor: SandboxProcessor) -> None:
    receiver = Receiver()
    port = unused_port()
    delivering = new_deliverer(processor, f"http://127.0.0.1:{port}/hook", max_attempts=50, base_delay=0.05)
    await delivering.start()
    try:
        await charge(processor, "k-refused")
        # Nobody listens yet: attempts fail with connection errors and are retried.
        await asyncio.wait_for(failed_attempts(delivering, at_least=2), TIMEOUT)
        assert receiver.requests == []
        async with serving_on(receiver, port):
            await settle(delivering)
    finally:
        await delivering.aclose()

    assert sorted(receiver.accepted_types()) == ["payment_intent.created", "payment_intent.succeeded"]
    assert await processor.unacknowledged_events() == []


async def failed_attempts(deliverer: WebhookDeliverer, *, at_least: int) -> None:
    while int(str(deliverer.status()["failed_attempts"])) < at_least:
        await asyncio.sleep(0.01)


@asynccontextmanager
async def serving_on(receiver: Receiver, port: int) -> AsyncIterator[None]:
    app = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    async with serve_app(app, port=port):
        yield


async def test_a_second_listener_is_refused(processor: SandboxProcessor, deliverer: WebhookDeliverer) -> None:
    with pytest.raises(RuntimeError):
        await new_deliverer(processor, "http://127.0.0.1:9/hook").start()
    assert processor.on_event is not None

    await deliverer.aclose()

    assert processor.on_event is None


# -- durability ------------------------------------------------------------------------------------


async def test_undelivered_events_are_sent_after_a_restart(tmp_path: Path, receiver: Receiver) -> None:
    path = tmp_path / "sandbox.sqlite3"
    first = SandboxProcessor(state_path=path)
    down = new_deliverer(first, f"http://127.0.0.1:{unused_port()}/hook", max_attempts=2)
    await down.start()
    await charge(first, "k-durable")
    await settle(down)  # both attempts refused: given up, not acknowledged
    ids = await event_ids(first)
    assert [event["id"] for event in await first.unacknowledged_events()] == ids
    await down.aclose()
    await first.aclose()

    restarted = SandboxProcessor(state_path=path)
    up = new_deliverer(restarted, receiver.url)
    await up.start()
    await settle(up)
    await up.aclose()

    assert [r.event["id"] for r in receiver.accepted()] == ids
    assert await restarted.unacknowledged_events() == []
    await restarted.aclose()

    # Acknowledged is durable too: a third start sends nothing again.
    again = SandboxProcessor(state_path=path)
    third = new_deliverer(again, receiver.url)
    await third.start()
    await settle(third)
    await third.aclose()
    await again.aclose()
    assert len(receiver.requests) == len(ids)


async def test_webhooks_survive_sigkill(tmp_path: Path, receiver: Receiver) -> None:
    path = tmp_path / "sandbox.sqlite3"
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from pathlib import Path
        from gateways.sandbox.processor import SandboxProcessor, WebhookDeliverer

        async def main():
            processor = SandboxProcessor(state_path=Path({str(path)!r}))
            deliverer = WebhookDeliverer(processor, "http://127.0.0.1:{unused_port()}/hook", "s", base_delay=30)
            await deliverer.start()
            intent = await processor.create_payment_intent(
                amount=4200, currency="EUR", payment_method="pm_card_visa", idempotency_key="crash-1"
            )
            print(intent.id, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    completed = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.returncode == -signal.SIGKILL, completed.stderr
    intent_id = completed.stdout.strip()

    restarted = SandboxProcessor(state_path=path)
    delivering = new_deliverer(restarted, receiver.url)
    await delivering.start()
    await settle(delivering)
    await delivering.aclose()
    await restarted.aclose()

    assert receiver.accepted_types() == ["payment_intent.created", "payment_intent.succeeded"]
    assert {r.event["data"]["object"]["id"] for r in receiver.accepted()} == {intent_id}


# -- switches --------------------------------------------------------------------------------------


async def test_duplicate_sends_each_delivery_n_times(
    gateway: SandboxGateway, processor: SandboxProcessor, deliverer: WebhookDeliverer, receiver: Receiver
) -> None:
    deliverer.switches.duplicate(3)
    await charge(processor, "k-dup")
    await settle(deliverer)

    ids = await event_ids(processor)
    assert sorted(r.event["id"] for r in receiver.accepted()) == sorted(ids * 3)
    for event_id in ids:
        copies = [r for r in receiver.accepted() if r.event["id"] == event_id]
        assert len({r.body for r in copies}) == 1
        for copy in copies:
            assert (await gateway.verify_webhook(copy.as_delivery())).event_id == event_id

    deliverer.switches.reset()
    intent_id = await charge(processor, "k-dup-2", manual=True)
    await settle(deliverer)
    later = [r for r in receiver.accepted() if r.event["data"]["object"]["id"] == intent_id]
    assert [r.event["type"] for r in later] == ["payment_intent.created", "payment_intent.amount_capturable_updated"]


async def test_delay_holds_each_delivery_that_long(
    processor: SandboxProcessor, deliverer: WebhookDeliverer, receiver: Receiver
) -> None:
    deliverer.switches.delay(1.0)
    started = asyncio.get_running_loop().time()

    await charge(processor, "k-delay")
    await settle(deliverer)

    assert receiver.accepted_types() == ["payment_intent.created", "payment_intent.succeeded"]
    assert all(r.at - started >= 0.95 for r in receiver.requests)


async def test_drop_loses_events_for_good(tmp_path: Path, receiver: Receiver) -> None:
    path = tmp_path / "sandbox.sqlite3"
    processor = SandboxProcessor(state_path=path)
    delivering = new_deliverer(processor, receiver.url)
    await delivering.start()
    delivering.switches.drop(1)

    await charge(processor, "k-drop")
    await settle(delivering)
    await delivering.aclose()
    await processor.aclose()

    assert receiver.accepted_types() == ["payment_intent.succeeded"]  # `created` was lost
    assert delivering.switches.drops_left == 0

    restarted = SandboxProcessor(state_path=path)
    again = new_deliverer(restarted, receiver.url)
    await again.start()
    await settle(again)
    await again.aclose()
    assert await restarted.unacknowledged_events() == []
    await restarted.aclose()
    assert len(receiver.requests) == 1  # not redelivered after the restart either


async def test_hold_then_release_in_reverse_delivers_out_of_order(
    processor: SandboxProcessor, deliverer: WebhookDeliverer, receiver: Receiver
) -> None:
    deliverer.switches.hold()
    intent_id = await charge(processor, "k-hold")
    await processor.refund(intent_id, idempotency_key="k-hold-refund", amount=500)
    recorded = [str(event["type"]) for event in await processor.list_events()]
    assert recorded == ["payment_intent.created", "payment_intent.succeeded", "refund.created", "charge.refunded"]
    await asyncio.sleep(0.1)  # room for a (wrong) send to happen
    assert receiver.requests == []
    assert deliverer.status()["held"] == 4

    deliverer.switches.release(reverse=True)
    await settle(deliverer)

    assert receiver.accepted_types() == recorded[::-1]
    assert deliverer.status()["held"] == 0


async def test_release_in_order_and_reset_release_what_was_held(
    processor: SandboxProcessor, deliverer: WebhookDeliverer, receiver: Receiver
) -> None:
    deliverer.switches.hold()
    await charge(processor, "k-hold-1")
    deliverer.switches.release()
    await settle(deliverer)
    assert receiver.accepted_types() == ["payment_intent.created", "payment_intent.succeeded"]

    deliverer.switches.hold()
    await charge(processor, "k-hold-2", manual=True)
    assert deliverer.status()["held"] == 2
    deliverer.switches.reset()
    await settle(deliverer)
    assert receiver.accepted_types()[2:] == ["payment_intent.created", "payment_intent.amount_capturable_updated"]


async def test_idle_waits_for_held_deliveries(processor: SandboxProcessor, deliverer: WebhookDeliverer) -> None:
    deliverer.switches.hold()
    await charge(processor, "k-idle")

    waiting = asyncio.ensure_future(deliverer.idle())
    await asyncio.sleep(0.1)
    assert not waiting.done()

    deliverer.switches.release()
    await asyncio.wait_for(waiting, TIMEOUT)


# -- the switch routes -----------------------------------------------------------------------------


@pytest.fixture
async def switch_client(processor: SandboxProcessor) -> AsyncIterator[tuple[httpx.AsyncClient, WebhookDeliverer]]:
    delivering = WebhookDeliverer(processor, "http://127.0.0.1:9/hook", SECRET)  # never started: switches only
    app = Starlette(routes=[Mount("/sandbox", routes=sandbox_routes(processor, delivering, guard=guard_for_tests()))])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://payql.test", headers=STAFF_HEADERS
    ) as client:
        yield client, delivering


async def test_switch_routes_flip_the_switches(
    switch_client: tuple[httpx.AsyncClient, WebhookDeliverer],
) -> None:
    client, delivering = switch_client
    switches = delivering.switches

    assert (await client.post("/sandbox/webhooks/switches", json={"duplicate": 2})).json()["duplicate"] == 2
    assert (await client.post("/sandbox/webhooks/switches", json={"delay": 0.5})).json()["delay"] == 0.5
    assert (await client.post("/sandbox/webhooks/switches", json={"drop": 3})).json()["drop"] == 3
    assert (await client.post("/sandbox/webhooks/switches", json={"hold": True})).json()["hold"] is True
    assert (switches.copies, switches.delay_seconds, switches.drops_left, switches.holding) == (2, 0.5, 3, True)

    released = await client.post("/sandbox/webhooks/switches", json={"release": True, "reverse": True})
    assert released.status_code == 200
    assert released.json()["hold"] is False

    reset = await client.delete("/sandbox/webhooks/switches")
    assert reset.status_code == 200
    assert reset.json() == {
        "duplicate": 1,
        "delay": 0.0,
        "drop": 0,
        "hold": False,
        "held": 0,
        "pending": 0,
        "failed_attempts": 0,
    }


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"duplicate": 0},
        {"duplicate": True},
        {"duplicate": 2, "drop": 1},
        {"delay": "soon"},
        {"delay": -1},
        {"drop": -1},
        {"hold": False},
        {"release": False},
        {"release": True, "reverse": "yes"},
        {"reverse": True},
        {"hold": True, "reverse": True},
        {"mode": "chaos"},
        [1, 2],
    ],
)
async def test_switch_routes_refuse_bad_requests(
    switch_client: tuple[httpx.AsyncClient, WebhookDeliverer], body: object
) -> None:
    client, delivering = switch_client

    response = await client.post("/sandbox/webhooks/switches", json=body)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_request"
    assert delivering.switches.snapshot() == {"duplicate": 1, "delay": 0.0, "drop": 0, "hold": False}


async def test_switch_routes_exist_only_with_a_deliverer(processor: SandboxProcessor) -> None:
    app = Starlette(routes=[Mount("/sandbox", routes=sandbox_routes(processor, guard=guard_for_tests()))])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://payql.test", headers=STAFF_HEADERS
    ) as client:
        assert (await client.post("/sandbox/webhooks/switches", json={"hold": True})).status_code == 404
        assert (await client.delete("/sandbox/webhooks/switches")).status_code == 404
