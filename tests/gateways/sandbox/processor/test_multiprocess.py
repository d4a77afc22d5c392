"""Several processes on one sandbox state file (`payql serve` and `payql worker`): the file is the truth.

Two `SandboxProcessor`s on the same `state_path` in this test process behave like two processes (each
has its own connection and memory); some tests also run a real second Python process.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import httpx
import pytest

from gateways.sandbox import SandboxGateway
from gateways.sandbox.processor import SandboxProcessor, WebhookDeliverer
from gateways.sandbox.processor.errors import SandboxInvalidRequest
from gateways.sandbox.processor.objects import IntentStatus, JsonDict, SandboxRefund
from gateways.sandbox.processor.state_file import SandboxStateFile
from gateways.types import PAYQL_PAYMENT_ID

REPO = Path(__file__).resolve().parents[4]
BASE_URL = "http://payql.test"
DAY = 86_400
TIMEOUT = 60


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "sandbox.sqlite3"


@pytest.fixture
async def pair(path: Path) -> AsyncIterator[tuple[SandboxProcessor, SandboxProcessor]]:
    """Two processors on one file, both opened (loaded) before either changes anything."""
    first, second = SandboxProcessor(state_path=path), SandboxProcessor(state_path=path)
    await first.open()
    await second.open()
    yield first, second
    await first.aclose()
    await second.aclose()


async def _paid(processor: SandboxProcessor, key: str, amount: int = 1000, **extra: object) -> str:
    intent = await processor.create_payment_intent(
        amount=amount,
        currency="USD",
        payment_method="pm_card_visa",
        idempotency_key=key,
        **extra,  # type: ignore[arg-type]
    )
    return intent.id


async def _refund_or_refusal(
    processor: SandboxProcessor, intent_id: str, key: str, amount: int
) -> SandboxRefund | None:
    try:
        return await processor.refund(intent_id, idempotency_key=key, amount=amount)
    except SandboxInvalidRequest:
        return None


async def _run_python(script: str) -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(script),
        cwd=REPO,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    assert process.returncode == 0, err.decode()
    return out.decode()


# -- seeing each other's changes -------------------------------------------------------------------


async def test_an_intent_created_by_one_is_retrievable_listable_and_findable_by_the_other(
    pair: tuple[SandboxProcessor, SandboxProcessor],
) -> None:
    server, worker = pair
    worker_gateway = SandboxGateway(worker, BASE_URL)

    intent_id = await _paid(server, "k1", metadata={PAYQL_PAYMENT_ID: "pay_123"})

    assert (await worker.retrieve(intent_id)).status is IntentStatus.SUCCEEDED
    assert [intent.id for intent in await worker.list_payment_intents()] == [intent_id]
    found = await worker_gateway.find_payment("pay_123")
    assert found is not None and found.reference == intent_id
    assert [event["type"] for event in await worker.list_events()] == [
        "payment_intent.created",
        "payment_intent.succeeded",
    ]


async def test_a_capture_by_the_other_is_seen_and_kept_in_creation_order(
    pair: tuple[SandboxProcessor, SandboxProcessor],
) -> None:
    first, second = pair
    held = await first.create_payment_intent(
        amount=800, currency="USD", payment_method="pm_card_visa", idempotency_key="k1", capture_method="manual"
    )
    later_id = await _paid(second, "k2")

    captured = await second.capture(held.id, idempotency_key="c1", amount_to_capture=500)

    seen = await first.retrieve(held.id)
    assert seen == captured
    assert (seen.status, seen.amount_received) == (IntentStatus.SUCCEEDED, 500)
    assert [i.id for i in await first.list_payment_intents()] == [held.id, later_id]
    assert await first.list_events() == await second.list_events()
    # A second capture from the first one is refused: it acts on the state the second one left.
    with pytest.raises(SandboxInvalidRequest):
        await first.capture(held.id, idempotency_key="c2")


async def test_concurrent_refunds_from_both_never_exceed_what_was_captured(
    pair: tuple[SandboxProcessor, SandboxProcessor],
) -> None:
    first, second = pair
    intent_id = await _paid(first, "k1", amount=1000)

    attempts = [
        _refund_or_refusal(processor, intent_id, f"r-{name}-{n}", 300)
        for n in range(6)
        for name, processor in (("a", first), ("b", second))
    ]
    refunds = [refund for refund in await asyncio.gather(*attempts) if refund is not None]

    assert sum(refund.amount for refund in refunds) == 900  # three fit in 1000, the other nine were refused
    for processor in pair:
        assert (await processor.retrieve(intent_id)).amount_refunded == 900
        refunded = [e for e in await processor.list_events() if e["type"] == "refund.created"]
        assert len(refunded) == 3


async def test_concurrent_refunds_from_a_real_second_process_never_exceed_what_was_captured(path: Path) -> None:
    here = SandboxProcessor(state_path=path)
    intent_id = await _paid(here, "k1", amount=1000)
    script = f"""
        import asyncio, json, sys
        from pathlib import Path
        from gateways.sandbox.processor import SandboxProcessor
        from gateways.sandbox.processor.errors import SandboxInvalidRequest

        async def refund(processor, n):
            try:
                refund = await processor.refund({intent_id!r}, idempotency_key=f"child-{{n}}", amount=50)
            except SandboxInvalidRequest:
                return None
            return refund.id

        async def main():
            processor = SandboxProcessor(state_path=Path({str(path)!r}))
            await processor.open()
            print("ready", flush=True)
            sys.stdin.readline()
            done = await asyncio.gather(*(refund(processor, n) for n in range(20)))
            await processor.aclose()
            print(json.dumps([refund_id for refund_id in done if refund_id is not None]))

        asyncio.run(main())
    """
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        textwrap.dedent(script),
        cwd=REPO,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    assert await asyncio.wait_for(process.stdout.readline(), TIMEOUT) == b"ready\n"

    ours, (out, err) = await asyncio.gather(
        asyncio.gather(*(_refund_or_refusal(here, intent_id, f"parent-{n}", 50) for n in range(20))),
        asyncio.wait_for(process.communicate(b"go\n"), TIMEOUT),
    )

    assert process.returncode == 0, err.decode()
    theirs: list[str] = json.loads(out.decode().splitlines()[-1])
    mine = [refund.id for refund in ours if refund is not None]
    assert len(mine) + len(theirs) == 20  # 40 refunds of 50 were tried on 1000
    assert (await here.retrieve(intent_id)).amount_refunded == 1000
    events = await here.list_events()
    assert sorted(e["data"]["object"]["id"] for e in events if e["type"] == "refund.created") == sorted(  # type: ignore[index]
        mine + theirs
    )
    await here.aclose()


async def test_an_idempotency_key_is_honoured_across_processes(
    pair: tuple[SandboxProcessor, SandboxProcessor],
) -> None:
    first, second = pair

    original = await first.create_payment_intent(
        amount=500, currency="USD", payment_method="pm_card_visa", idempotency_key="shared"
    )
    replayed = await second.create_payment_intent(
        amount=500, currency="USD", payment_method="pm_card_visa", idempotency_key="shared"
    )

    assert replayed == original
    assert [i.id for i in await first.list_payment_intents()] == [original.id]
    assert [i.id for i in await second.list_payment_intents()] == [original.id]


async def test_one_key_sent_to_both_at_once_makes_one_intent(
    pair: tuple[SandboxProcessor, SandboxProcessor],
) -> None:
    calls = [
        processor.create_payment_intent(
            amount=500, currency="USD", payment_method="pm_card_visa", idempotency_key="same-key"
        )
        for _ in range(10)
        for processor in pair
    ]

    intents = await asyncio.gather(*calls)

    assert {intent.id for intent in intents} == {intents[0].id}
    for processor in pair:
        assert len(await processor.list_payment_intents()) == 1


async def test_the_test_clock_is_shared(pair: tuple[SandboxProcessor, SandboxProcessor]) -> None:
    first, second = pair

    await first.advance_clock(DAY)
    assert (await second.list_payment_intents()) == []  # any call catches up
    assert second.clock.offset == DAY

    # The second one advances from where the first one left the clock, not from where it last saw it.
    now = await second.advance_clock(2 * DAY)
    intent_id = await _paid(first, "k1")

    assert first.clock.offset == second.clock.offset == 3 * DAY
    assert (await second.retrieve(intent_id)).created >= now


async def test_events_of_the_other_are_unacknowledged_until_acknowledged(
    pair: tuple[SandboxProcessor, SandboxProcessor],
) -> None:
    server, worker = pair
    await _paid(server, "k1")
    await server.acknowledge_events([str(e["id"]) for e in await server.unacknowledged_events()])

    intent_id = await _paid(worker, "k2")  # an event the worker causes

    pending = await server.unacknowledged_events()
    assert [(e["type"], e["data"]["object"]["id"]) for e in pending] == [  # type: ignore[index]
        ("payment_intent.created", intent_id),
        ("payment_intent.succeeded", intent_id),
    ]
    await server.acknowledge_events([str(pending[0]["id"])])
    assert [e["id"] for e in await worker.unacknowledged_events()] == [pending[1]["id"]]
    await server.acknowledge_events([str(pending[1]["id"])])
    assert await server.unacknowledged_events() == []
    assert await worker.unacknowledged_events() == []


async def test_the_others_events_reach_on_event_once(pair: tuple[SandboxProcessor, SandboxProcessor]) -> None:
    server, worker = pair
    received: list[JsonDict] = []

    async def listener(event: JsonDict) -> None:
        received.append(event)

    server.on_event = listener
    intent_id = await _paid(worker, "k1")
    await server.refresh()
    await server.refresh()
    own_id = await _paid(server, "k2")

    assert [(e["type"], e["data"]["object"]["id"]) for e in received] == [  # type: ignore[index]
        ("payment_intent.created", intent_id),
        ("payment_intent.succeeded", intent_id),
        ("payment_intent.created", own_id),
        ("payment_intent.succeeded", own_id),
    ]


async def test_the_deliverer_sends_webhooks_for_events_the_other_process_commits(
    pair: tuple[SandboxProcessor, SandboxProcessor],
) -> None:
    server, worker = pair
    delivered: list[JsonDict] = []
    arrived = asyncio.Event()

    def endpoint(request: httpx.Request) -> httpx.Response:
        delivered.append(json.loads(request.content))
        if len(delivered) == 2:
            arrived.set()
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(endpoint)) as http:
        deliverer = WebhookDeliverer(server, f"{BASE_URL}/hook", "whsec_x", http=http, poll_interval=0.05)
        await deliverer.start()
        try:
            intent_id = await _paid(worker, "k1")  # the server makes no call of its own meanwhile
            await asyncio.wait_for(arrived.wait(), TIMEOUT)
            await deliverer.idle()
        finally:
            await deliverer.aclose()

    assert [(e["type"], e["data"]["object"]["id"]) for e in delivered] == [  # type: ignore[index]
        ("payment_intent.created", intent_id),
        ("payment_intent.succeeded", intent_id),
    ]
    assert await worker.unacknowledged_events() == []


# -- with a real second process --------------------------------------------------------------------


async def test_a_real_second_process_sees_and_changes_the_same_state(path: Path) -> None:
    server = SandboxProcessor(state_path=path)
    await server.open()  # loaded before the other process starts, as `payql serve` is
    held = await server.create_payment_intent(
        amount=700, currency="EUR", payment_method="pm_card_visa", idempotency_key="k1", capture_method="manual"
    )

    out = await _run_python(
        f"""
        import asyncio, json
        from pathlib import Path
        from gateways.sandbox.processor import SandboxProcessor

        async def main():
            worker = SandboxProcessor(state_path=Path({str(path)!r}))
            seen = await worker.retrieve({held.id!r})
            await worker.capture(seen.id, idempotency_key="c1")
            await worker.advance_clock({DAY})
            paid = await worker.create_payment_intent(
                amount=300, currency="EUR", payment_method="pm_card_visa", idempotency_key="k2"
            )
            await worker.aclose()
            print(json.dumps({{"status": seen.status.value, "paid": paid.id}}))

        asyncio.run(main())
        """
    )

    answer = json.loads(out)
    assert answer["status"] == "requires_capture"
    assert (await server.retrieve(held.id)).status is IntentStatus.SUCCEEDED
    assert server.clock.offset == DAY
    assert [i.id for i in await server.list_payment_intents()] == [held.id, answer["paid"]]
    replay = await server.create_payment_intent(
        amount=300, currency="EUR", payment_method="pm_card_visa", idempotency_key="k2"
    )
    assert replay.id == answer["paid"]
    await server.aclose()


# -- cost and compatibility ------------------------------------------------------------------------


async def test_rows_are_read_again_only_after_another_process_wrote(
    pair: tuple[SandboxProcessor, SandboxProcessor], path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = pair
    reads: list[int] = []
    original: Callable[[SandboxStateFile, int], object] = SandboxStateFile.read_since

    def counting(self: SandboxStateFile, since: int) -> object:
        if self.path == path:  # not the session's own sandbox, reading on the same loop meanwhile
            reads.append(since)
        return original(self, since)

    monkeypatch.setattr(SandboxStateFile, "read_since", counting)
    intent_id = await _paid(first, "k1")
    for _ in range(5):
        await first.retrieve(intent_id)
    await first.list_events()
    assert reads == []  # its own write and the reads after it: only the version was looked at

    await second.retrieve(intent_id)  # the first one wrote: the second one reads what changed, once
    await second.list_payment_intents()
    assert len(reads) == 1 and reads[0] >= 0


async def test_a_file_from_before_versions_is_read_and_upgraded(path: Path) -> None:
    older = SandboxProcessor()  # in memory: only to make a well-formed intent
    intent = await older.create_payment_intent(
        amount=900, currency="USD", payment_method="pm_card_visa", idempotency_key="k1"
    )
    events = await older.list_events()
    with sqlite3.connect(path) as connection:
        connection.executescript(
            """
            CREATE TABLE objects (kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (kind, id));
            CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, body TEXT NOT NULL);
            CREATE TABLE settings (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
            CREATE TABLE event_acks (event_id TEXT PRIMARY KEY);
            """
        )
        connection.execute(
            "INSERT INTO objects VALUES ('payment_intent', ?, ?)", (intent.id, json.dumps(intent.to_dict()))
        )
        connection.executemany("INSERT INTO events (body) VALUES (?)", [(json.dumps(e),) for e in events])
        connection.execute("INSERT INTO event_acks VALUES (?)", (events[0]["id"],))
        connection.execute("INSERT INTO settings VALUES ('clock_offset', 60)")
    connection.close()

    first, second = SandboxProcessor(state_path=path), SandboxProcessor(state_path=path)
    assert list(await asyncio.gather(first.retrieve(intent.id), second.retrieve(intent.id))) == [intent, intent]
    assert [e["id"] for e in await first.unacknowledged_events()] == [events[1]["id"]]
    assert first.clock.offset == 60
    refund = await second.refund(intent.id, idempotency_key="r1", amount=100)
    assert (await first.retrieve(intent.id)).amount_refunded == refund.amount
    await first.aclose()
    await second.aclose()
