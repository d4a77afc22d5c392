"""The sandbox processor itself: its clock, durable state, events and fault switches."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gateways.sandbox.processor import SandboxClock, SandboxProcessor
from gateways.sandbox.processor.errors import (
    SandboxCardDeclined,
    SandboxInvalidRequest,
    SandboxTimeout,
    SandboxUnavailable,
)
from gateways.sandbox.processor.objects import IntentStatus

REPO = Path(__file__).resolve().parents[4]
DAY = 86_400
NEXT_YEAR = datetime.now(UTC).year + 1


def test_clock_only_moves_forward() -> None:
    clock = SandboxClock()
    start = clock.now()

    with pytest.raises(ValueError):
        clock.advance(-1)

    assert clock.advance(30 * DAY) >= start + 30 * DAY
    assert clock.offset == 30 * DAY
    assert clock.now() >= start + 30 * DAY


def test_clock_never_goes_back_when_the_wall_clock_does() -> None:
    wall = [1_000_000.0]
    clock = SandboxClock(time_source=lambda: wall[0])
    assert clock.now() == 1_000_000

    wall[0] = 999_000.0

    assert clock.now() == 1_000_000
    assert clock.advance(10) == 1_000_000  # 999_000 + 10 is still behind what was handed out
    wall[0] = 1_000_500.0
    assert clock.now() == 1_000_510


async def test_processor_timestamps_come_from_its_clock() -> None:
    wall = [1_700_000_000.0]
    processor = SandboxProcessor(clock=SandboxClock(time_source=lambda: wall[0]))

    before = await processor.create_payment_intent(
        amount=500, currency="usd", payment_method="pm_card_visa", idempotency_key="k1"
    )
    now = await processor.advance_clock(40 * DAY)
    after = await processor.create_payment_intent(
        amount=500, currency="USD", payment_method="pm_card_visa", idempotency_key="k2"
    )

    assert before.created == 1_700_000_000
    assert now == after.created == 1_700_000_000 + 40 * DAY
    assert before.currency == "USD"
    assert [i.id for i in await processor.list_payment_intents(created_gte=now)] == [after.id]
    assert len(await processor.list_payment_intents()) == 2
    with pytest.raises(ValueError):
        await processor.advance_clock(-5)


async def test_a_saved_card_expires_as_the_clock_moves_on() -> None:
    processor = SandboxProcessor()
    this_year, this_month = datetime.now(UTC).year, datetime.now(UTC).month
    token = await processor.tokenize_card("4242424242424242", this_month, this_year, "123")

    await processor.advance_clock(62 * DAY)

    with pytest.raises(SandboxCardDeclined) as raised:
        await processor.create_payment_intent(
            amount=500, currency="USD", payment_method=token.id, idempotency_key="renewal-1"
        )
    assert raised.value.decline_code == "expired_card"


async def test_state_survives_a_new_processor_on_the_same_file(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.sqlite3"
    first = SandboxProcessor(state_path=path)
    paid = await first.create_payment_intent(
        amount=1999, currency="JPY", payment_method="pm_card_visa", idempotency_key="k1", metadata={"a": "b"}
    )
    held = await first.create_payment_intent(
        amount=700,
        currency="KWD",
        payment_method="pm_card_visa",
        idempotency_key="k2",
        capture_method="manual",
    )
    refund = await first.refund(paid.id, idempotency_key="r1", amount=999)
    token = await first.tokenize_card("4000000000000002", 1, NEXT_YEAR, "999")
    with pytest.raises(SandboxCardDeclined) as declined:
        await first.create_payment_intent(amount=100, currency="USD", payment_method=token.id, idempotency_key="k3")
    offset_now = await first.advance_clock(3 * DAY)
    events = await first.list_events()
    await first.aclose()

    second = SandboxProcessor(state_path=path)
    await second.open()

    assert (await second.retrieve(paid.id)).amount_refunded == 999
    assert (await second.retrieve(paid.id)).metadata == {"a": "b"}
    assert (await second.retrieve(held.id)).status is IntentStatus.REQUIRES_CAPTURE
    assert [i.id for i in await second.list_payment_intents()] == [
        paid.id,
        held.id,
        declined.value.payment_intent_id,
    ]
    assert await second.list_events() == events
    assert second.clock.offset == 3 * DAY and second.clock.now() >= offset_now
    # Idempotency records survive too: a replay answers as before instead of charging again.
    replayed = await second.refund(paid.id, idempotency_key="r1", amount=999)
    assert replayed == refund
    with pytest.raises(SandboxCardDeclined) as again:
        await second.create_payment_intent(amount=100, currency="USD", payment_method=token.id, idempotency_key="k3")
    assert again.value.payment_intent_id == declined.value.payment_intent_id
    captured = await second.capture(held.id, idempotency_key="c1")
    assert captured.amount_received == 700
    await second.aclose()


async def test_every_change_is_on_disk_before_the_call_returns(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.sqlite3"
    script = textwrap.dedent(
        f"""
        import asyncio, os, signal
        from pathlib import Path
        from gateways.sandbox.processor import SandboxProcessor

        async def main():
            processor = SandboxProcessor(state_path=Path({str(path)!r}))
            intent = await processor.create_payment_intent(
                amount=4200, currency="EUR", payment_method="pm_card_visa", idempotency_key="crash-1"
            )
            print(intent.id, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
        """
    )
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=60, check=False
    )
    assert completed.returncode == -signal.SIGKILL, completed.stderr
    intent_id = completed.stdout.strip()

    restarted = SandboxProcessor(state_path=path)

    found = await restarted.retrieve(intent_id)
    assert (found.amount, found.currency, found.status) == (4200, "EUR", IntentStatus.SUCCEEDED)
    replay = await restarted.create_payment_intent(
        amount=4200, currency="EUR", payment_method="pm_card_visa", idempotency_key="crash-1"
    )
    assert replay.id == intent_id
    await restarted.aclose()


async def test_the_state_file_keeps_no_card_number_or_cvc(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.sqlite3"
    processor = SandboxProcessor(state_path=path)
    await processor.tokenize_card("4000002500003155", 7, NEXT_YEAR, "7391")
    await processor.aclose()

    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir())
    assert b"3155" in raw  # last4 is kept, so the scan reads the real content
    assert b"4000002500003155" not in raw
    assert b"7391" not in raw


async def test_a_corrupt_state_file_makes_the_processor_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.sqlite3"
    path.write_bytes(b"this is not a database" * 100)

    with pytest.raises(SandboxUnavailable):
        await SandboxProcessor(state_path=path).retrieve("pi_sbx_x")


async def test_events_are_recorded_and_delivered() -> None:
    processor = SandboxProcessor()
    received: list[dict[str, object]] = []

    async def listener(event: dict[str, object]) -> None:
        received.append(event)

    processor.on_event = listener
    held = await processor.create_payment_intent(
        amount=800,
        currency="USD",
        payment_method="pm_card_visa",
        idempotency_key="k1",
        capture_method="manual",
    )
    await processor.capture(held.id, idempotency_key="c1", amount_to_capture=500)
    await processor.refund(held.id, idempotency_key="r1")
    pending = await processor.create_payment_intent(
        amount=800, currency="USD", payment_method="pm_card_authenticationRequired", idempotency_key="k2"
    )
    await processor.cancel(pending.id, idempotency_key="v1")
    with pytest.raises(SandboxCardDeclined):
        await processor.create_payment_intent(
            amount=800, currency="USD", payment_method="pm_card_chargeDeclined", idempotency_key="k3"
        )
    await processor.capture(held.id, idempotency_key="c1", amount_to_capture=500)  # a replay: no event

    assert [event["type"] for event in received] == [
        "payment_intent.created",
        "payment_intent.amount_capturable_updated",
        "payment_intent.succeeded",
        "refund.created",
        "charge.refunded",
        "payment_intent.created",
        "payment_intent.requires_action",
        "payment_intent.canceled",
        "payment_intent.created",
        "payment_intent.payment_failed",
    ]
    assert await processor.list_events() == received
    succeeded = received[2]
    assert str(succeeded["id"]).startswith("evt_sbx_")
    assert isinstance(succeeded["created"], int)
    assert succeeded["data"] == {"object": {**held.to_dict(), **_captured_fields(500)}}
    refunded = received[4]["data"]
    assert isinstance(refunded, dict) and refunded["object"]["amount_refunded"] == 500
    failed = received[-1]["data"]
    assert isinstance(failed, dict) and failed["object"]["last_payment_error"]["decline_code"] == "generic_decline"


def _captured_fields(amount: int) -> dict[str, object]:
    return {"status": "succeeded", "amount_received": amount, "amount_capturable": 0}


async def test_a_failing_listener_does_not_undo_the_change(caplog: pytest.LogCaptureFixture) -> None:
    processor = SandboxProcessor()

    async def broken(event: dict[str, object]) -> None:
        raise RuntimeError("webhook sink down")

    processor.on_event = broken
    with caplog.at_level(logging.ERROR):
        intent = await processor.create_payment_intent(
            amount=100, currency="USD", payment_method="pm_card_visa", idempotency_key="k1"
        )

    assert (await processor.retrieve(intent.id)).status is IntentStatus.SUCCEEDED
    assert "listener failed" in caplog.text


async def test_listener_gets_a_copy_it_cannot_use_to_change_history() -> None:
    processor = SandboxProcessor()

    async def vandal(event: dict[str, object]) -> None:
        event["type"] = "tampered"

    processor.on_event = vandal
    await processor.create_payment_intent(
        amount=100, currency="USD", payment_method="pm_card_visa", idempotency_key="k1"
    )

    assert "tampered" not in {event["type"] for event in await processor.list_events()}


async def test_a_lost_decline_is_replayed_as_the_decline() -> None:
    processor = SandboxProcessor()
    processor.arm_fault("timeout", 1)

    with pytest.raises(SandboxTimeout):
        await processor.create_payment_intent(
            amount=100,
            currency="USD",
            payment_method="pm_card_chargeDeclinedExpiredCard",
            idempotency_key="k1",
        )
    with pytest.raises(SandboxCardDeclined) as raised:
        await processor.create_payment_intent(
            amount=100,
            currency="USD",
            payment_method="pm_card_chargeDeclinedExpiredCard",
            idempotency_key="k1",
        )

    assert raised.value.decline_code == "expired_card"
    assert [i.id for i in await processor.list_payment_intents()] == [raised.value.payment_intent_id]


async def test_faults_hit_reads_too_and_count_down() -> None:
    processor = SandboxProcessor()
    intent = await processor.create_payment_intent(
        amount=100, currency="USD", payment_method="pm_card_visa", idempotency_key="k1"
    )
    processor.arm_fault("unavailable", 1)

    with pytest.raises(SandboxUnavailable):
        await processor.retrieve(intent.id)
    assert (await processor.retrieve(intent.id)).id == intent.id
    with pytest.raises(ValueError):
        processor.arm_fault("meltdown", 1)
    with pytest.raises(ValueError):
        processor.arm_fault("timeout", 0)


async def test_a_refused_request_does_not_bind_its_key() -> None:
    processor = SandboxProcessor()
    with pytest.raises(SandboxInvalidRequest):
        await processor.create_payment_intent(
            amount=100, currency="XXX", payment_method="pm_card_visa", idempotency_key="k1"
        )

    intent = await processor.create_payment_intent(
        amount=100, currency="USD", payment_method="pm_card_visa", idempotency_key="k1"
    )

    assert intent.status is IntentStatus.SUCCEEDED


@pytest.mark.parametrize(
    "bad",
    [
        {"amount": 0},
        {"amount": -5},
        {"amount": 10.5},
        {"amount": True},
        {"amount": 100_000_000},
        {"currency": "ZZZ"},
        {"capture_method": "later"},
        {"return_url": "javascript:alert(1)"},
        {"metadata": {"k": "v" * 501}},
        {"idempotency_key": ""},
    ],
)
async def test_malformed_requests_are_refused(bad: dict[str, object]) -> None:
    processor = SandboxProcessor()
    params: dict[str, object] = {
        "amount": 100,
        "currency": "USD",
        "payment_method": "pm_card_visa",
        "idempotency_key": "k1",
        **bad,
    }

    with pytest.raises(SandboxInvalidRequest):
        await processor.create_payment_intent(**params)  # type: ignore[arg-type]

    assert await processor.list_payment_intents() == []


async def test_events_are_json_serializable() -> None:
    processor = SandboxProcessor()
    await processor.create_payment_intent(
        amount=100, currency="USD", payment_method="pm_card_visa", idempotency_key="k1"
    )

    for event in await processor.list_events():
        assert json.loads(json.dumps(event)) == event
