"""What the circuit breaker hears of a guarded call: our own timeout is a failure (the gateway did not
answer in time), while a refusal by our own bulkhead or a call cut short by the request's deadline says
nothing of the gateway and is not told. A bulkhead refusal is counted in its own metric."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from prometheus_client import REGISTRY

from domain.money import Money
from domain.statuses import CaptureMethod
from gateways.call_guard import CallGuard, CallLimits, guard_gateway
from gateways.deadline import gateway_deadline
from gateways.errors import DeadlineExceeded, GatewayBusy, GatewayTimeout
from gateways.health import BreakerPolicy, CircuitState, LocalHealthBoard
from gateways.sandbox.adapter import SandboxGateway
from gateways.sandbox.processor import SandboxProcessor
from gateways.types import ChargeRequest
from payql.gateway_observation import observe_gateway

NAME = "observed-sandbox"


@pytest.fixture
async def processor() -> AsyncIterator[SandboxProcessor]:
    processor = SandboxProcessor()
    yield processor
    processor.clear_faults()
    await processor.aclose()


def observed(processor: SandboxProcessor, limits: CallLimits) -> tuple[SandboxGateway, LocalHealthBoard]:
    # One failure opens the circuit: any failure told to the breaker shows at once.
    health = LocalHealthBoard(BreakerPolicy(consecutive_failures=1))
    gateway = SandboxGateway(processor, public_base_url="http://127.0.0.1")
    gateway.name = NAME
    observe_gateway(guard_gateway(gateway, CallGuard(limits)), health)
    return gateway, health


def rejections() -> float:
    found = REGISTRY.get_sample_value(
        "payql_gateway_bulkhead_rejections_total", {"gateway": NAME, "operation": "charge"}
    )
    return found or 0.0


def charge_request() -> ChargeRequest:
    return ChargeRequest(
        amount=Money(900, "USD"),
        payment_method="pm_card_visa",
        capture_method=CaptureMethod.AUTOMATIC,
        idempotency_key=f"test-{uuid.uuid4()}",
        description="observed",
    )


async def test_our_own_timeout_is_a_failure_the_breaker_hears_of(processor: SandboxProcessor) -> None:
    gateway, health = observed(processor, CallLimits(call_timeout_seconds=0.05))
    processor.arm_fault("hold", 1)
    with pytest.raises(GatewayTimeout):
        await gateway.charge(charge_request())
    assert health.view(NAME).state is CircuitState.OPEN


async def test_a_call_cut_by_the_request_deadline_is_not_held_against_the_gateway(
    processor: SandboxProcessor,
) -> None:
    gateway, health = observed(processor, CallLimits(call_timeout_seconds=60))
    processor.arm_fault("hold", 1)
    with gateway_deadline(0.05), pytest.raises(DeadlineExceeded):
        await gateway.charge(charge_request())
    assert health.view(NAME).state is CircuitState.CLOSED


async def test_a_bulkhead_refusal_is_counted_apart_and_not_held_against_the_gateway(
    processor: SandboxProcessor,
) -> None:
    gateway, health = observed(processor, CallLimits(call_timeout_seconds=60, max_concurrent_calls=1))
    before = rejections()
    processor.arm_fault("hold", 1)
    held = asyncio.create_task(gateway.charge(charge_request()))
    await processor.held_answers.wait_until_held()

    with pytest.raises(GatewayBusy):
        await gateway.charge(charge_request())

    assert rejections() == before + 1
    assert health.view(NAME).state is CircuitState.CLOSED
    processor.held_answers.release()
    await held
    assert health.view(NAME).failure_rate == 0
