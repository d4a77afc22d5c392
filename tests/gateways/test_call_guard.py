"""The call guard around a real adapter (the sandbox over an in-memory processor): our own per-call timeout
makes a slow call an unknown outcome, the request's deadline cuts a call short, and the bulkhead refuses a
call past its bound unsent. A slow call is the sandbox's `hold` fault: the processor acts, then keeps its
answer back until the test releases it, so nothing here waits on a clock."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest

from domain.money import Money
from domain.statuses import CaptureMethod
from gateways.call_guard import CallGuard, CallLimits, guard_gateway
from gateways.deadline import gateway_deadline
from gateways.errors import DeadlineExceeded, GatewayBusy, GatewayNotAttempted, GatewayTimeout, GatewayUnavailable
from gateways.sandbox.adapter import SandboxGateway
from gateways.sandbox.processor import SandboxProcessor
from gateways.types import ChargeRequest, PaymentResult

# Long enough for any honest call on a busy machine; a held call never answers before its release.
PATIENT = 60.0


@pytest.fixture
async def processor() -> AsyncIterator[SandboxProcessor]:
    processor = SandboxProcessor()
    yield processor
    processor.clear_faults()
    await processor.aclose()


def guarded(processor: SandboxProcessor, **limits: float) -> tuple[SandboxGateway, CallGuard]:
    guard = CallGuard(CallLimits(**limits))  # type: ignore[arg-type]
    gateway = SandboxGateway(processor, public_base_url="http://127.0.0.1")
    guard_gateway(gateway, guard)
    return gateway, guard


def charge_request(key: str | None = None) -> ChargeRequest:
    return ChargeRequest(
        amount=Money(1500, "USD"),
        payment_method="pm_card_visa",
        capture_method=CaptureMethod.AUTOMATIC,
        idempotency_key=key or f"test-{uuid.uuid4()}",
        description="guarded",
        metadata={"payql_payment_id": str(uuid.uuid4())},
    )


async def test_a_call_past_our_own_timeout_is_an_unknown_outcome_and_the_gateway_did_act(
    processor: SandboxProcessor,
) -> None:
    gateway, _ = guarded(processor, call_timeout_seconds=0.05)
    processor.arm_fault("hold", 1)
    request = charge_request()

    with pytest.raises(GatewayTimeout) as timed_out:
        await gateway.charge(request)

    # Unknown, never "not attempted": the processor charged, and the same key reads the charge back.
    assert not isinstance(timed_out.value, GatewayNotAttempted)
    assert isinstance(timed_out.value, GatewayUnavailable)
    [intent] = await processor.list_payment_intents()
    assert intent.amount_received == 1500
    again = await gateway.charge(request)
    assert again.reference == intent.id
    assert len(await processor.list_payment_intents()) == 1


async def test_the_request_deadline_cuts_a_call_short_whatever_the_per_call_timeout(
    processor: SandboxProcessor,
) -> None:
    gateway, _ = guarded(processor, call_timeout_seconds=PATIENT)
    processor.arm_fault("hold", 1)

    with gateway_deadline(0.05), pytest.raises(DeadlineExceeded):
        await gateway.charge(charge_request())

    assert processor.held_answers.held == 1


async def test_no_call_is_sent_once_the_deadline_has_passed(processor: SandboxProcessor) -> None:
    gateway, _ = guarded(processor, call_timeout_seconds=PATIENT)

    with gateway_deadline(0), pytest.raises(DeadlineExceeded):
        await gateway.charge(charge_request())

    assert await processor.list_payment_intents() == []


async def test_a_listing_is_not_cut_by_the_per_call_timeout(processor: SandboxProcessor) -> None:
    # A timeout this short fires at the first turn of the loop: a charge held meanwhile is cut at once.
    gateway, _ = guarded(processor, call_timeout_seconds=1e-9)
    processor.arm_fault("hold", 1)
    listing = asyncio.create_task(gateway.list_payments(0))
    await processor.held_answers.wait_until_held()
    processor.held_answers.release()
    assert await listing == []

    processor.arm_fault("hold", 1)
    with pytest.raises(GatewayTimeout):
        await gateway.charge(charge_request())


async def test_a_full_bulkhead_refuses_the_next_call_unsent_and_frees_its_slot_after(
    processor: SandboxProcessor,
) -> None:
    gateway, guard = guarded(processor, call_timeout_seconds=PATIENT, max_concurrent_calls=1)
    processor.arm_fault("hold", 1)
    first = asyncio.create_task(gateway.charge(charge_request()))
    await processor.held_answers.wait_until_held()

    with pytest.raises(GatewayBusy) as refused:
        await gateway.charge(charge_request())

    # Nothing was sent, so a routed payment may fail over; only the held charge reached the processor.
    assert isinstance(refused.value, GatewayNotAttempted)
    assert len(await processor.list_payment_intents()) == 1
    assert guard.bulkhead.in_flight("sandbox") == 1
    processor.held_answers.release()
    answered: PaymentResult = await first
    assert answered.amount_captured == 1500
    assert guard.bulkhead.in_flight("sandbox") == 0
    await gateway.charge(charge_request())
    assert len(await processor.list_payment_intents()) == 2


async def test_a_slot_is_given_back_when_the_call_fails(processor: SandboxProcessor) -> None:
    gateway, guard = guarded(processor, call_timeout_seconds=0.05, max_concurrent_calls=1)
    processor.arm_fault("hold", 1)
    with pytest.raises(GatewayTimeout):
        await gateway.charge(charge_request())
    processor.arm_fault("unavailable", 1)
    with pytest.raises(GatewayNotAttempted):
        await gateway.charge(charge_request())
    assert guard.bulkhead.in_flight("sandbox") == 0
    await gateway.charge(charge_request())
