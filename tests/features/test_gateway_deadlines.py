"""Slow gateways, on the running server: our own per-call timeout, the request's deadline and retries of
capture, void and refund with the same key.

A slow gateway is the sandbox's `hold` fault: the processor acts, then keeps its answer back until the test
releases it. A call cut off meanwhile is an unknown outcome: the payment stays in flight on its gateway,
is never charged on the backup, and is settled afterwards, by reconciliation or by the gateway's webhook.
The backup gateway and the routing policy come from tests/features/test_failover.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from db.models import Order, Payment
from gateways.retrying import RetryPolicy
from gateways.sandbox.processor import SandboxProcessor
from payql.wiring import Services
from tests.features.test_failover import Gateways, attempts, charges, routed_input
from tests.features.test_failover import gateways as gateways  # the fixture
from tests.testkit import (
    CANCEL,
    CAPTURE,
    CHECKOUT,
    Shopper,
    checkout_input,
    make_price,
    new_key,
    sandbox_deliverer,
    settle,
)

# Long enough for any honest call on a busy machine; a held call never answers before its release.
PATIENT = 60.0

REFUND = (
    "mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { "
    "refund { id status amount { amount } } userErrors { code } } }"
)

Limits = Callable[..., None]


@pytest.fixture
def limits(services: Services, monkeypatch: pytest.MonkeyPatch) -> Limits:
    """Change the server's call limits for this test (`gateways.call_guard.CallLimits` fields)."""
    guard = services.deps.gateways.guard

    def change(**fields: float) -> None:
        monkeypatch.setattr(guard, "limits", dataclasses.replace(guard.limits, **fields))

    return change


@pytest.fixture
def retries(services: Services, monkeypatch: pytest.MonkeyPatch) -> Callable[[int], None]:
    """Retry up to `attempts` calls per gateway operation, without waiting between them."""

    def change(attempts: int) -> None:
        policy = RetryPolicy(attempts=attempts, base_seconds=0, max_seconds=0)
        monkeypatch.setattr(services.deps.gateways, "retries", policy)

    return change


@pytest.fixture
async def quiet_webhooks(services: Services) -> AsyncIterator[None]:
    """The sandbox's webhooks are held: nothing but the test's own steps tells PayQL what the gateway did."""
    deliverer = sandbox_deliverer(services)
    assert deliverer is not None
    deliverer.switches.hold()
    yield
    deliverer.switches.reset()


def codes(payload: dict[str, Any]) -> list[str]:
    return [error["code"] for error in payload["userErrors"]]


async def test_a_call_slower_than_the_call_timeout_stays_in_flight_and_is_settled_by_reconciliation(
    shopper: Shopper, gateways: Gateways, services: Services, limits: Limits, quiet_webhooks: None
) -> None:
    limits(call_timeout_seconds=0.5)
    gateways.primary.arm_fault("hold", 1)

    unknown = (await shopper.data(CHECKOUT, routed_input(await make_price(5100))))["checkout"]

    # The gateway charged and has not said so: an unknown outcome, never failed over.
    assert codes(unknown) == ["GATEWAY_UNAVAILABLE"]
    assert unknown["payment"]["status"] == "PENDING"
    order_id = unknown["order"]["id"]
    assert await attempts(order_id) == [("sandbox", "PENDING")]
    assert await charges(gateways.primary, order_id) == 1
    assert await charges(gateways.backup, order_id) == 0
    # Cut by our own timeout, not by the request's deadline: a failure the breaker hears of.
    assert gateways.health.view("sandbox").failure_rate > 0

    gateways.primary.held_answers.release()
    await services.jobs.reconcile()

    assert await attempts(order_id) == [("sandbox", "PAID")]
    assert (await Order.get(id=order_id)).status == "PAID"
    assert await charges(gateways.primary, order_id) == 1
    assert await charges(gateways.backup, order_id) == 0


async def test_the_request_deadline_ends_the_retries_and_the_payment_is_settled_in_the_background(
    shopper: Shopper,
    gateways: Gateways,
    services: Services,
    limits: Limits,
    retries: Callable[[int], None],
    quiet_webhooks: None,
) -> None:
    # Each held call is cut by the per-call timeout and retried with the same key; only the deadline can
    # end this many attempts before the request's answer.
    many = 50
    retries(many)
    limits(call_timeout_seconds=0.5, request_deadline_seconds=2.0)
    held_before = gateways.primary.held_answers.held
    gateways.primary.arm_fault("hold", many)

    answered = (await shopper.data(CHECKOUT, routed_input(await make_price(5200))))["checkout"]

    # Answered while the gateway still holds every answer back: the in-flight payment, GATEWAY_UNAVAILABLE.
    assert codes(answered) == ["GATEWAY_UNAVAILABLE"]
    assert answered["payment"]["status"] == "PENDING"
    calls = gateways.primary.held_answers.held - held_before
    assert 1 <= calls < many
    gateways.primary.clear_faults()
    order_id = answered["order"]["id"]
    assert await attempts(order_id) == [("sandbox", "PENDING")]
    # Every retry sent the payment's one key: one charge at the gateway, none on the backup.
    assert await charges(gateways.primary, order_id) == 1
    assert await charges(gateways.backup, order_id) == 0

    deliverer = sandbox_deliverer(services)
    assert deliverer is not None
    deliverer.switches.reset()
    await settle(services)

    assert await attempts(order_id) == [("sandbox", "PAID")]
    assert await charges(gateways.primary, order_id) == 1


@pytest.fixture
async def sandbox_alone(sandbox: SandboxProcessor, services: Services) -> AsyncIterator[SandboxProcessor]:
    # An armed fault hits the next sandbox call, whoever makes it: let earlier work finish first.
    await settle(services)
    yield sandbox
    sandbox.clear_faults()


async def charged(shopper: Shopper, services: Services, amount: int, capture_method: str) -> tuple[str, str]:
    """A checkout on the sandbox, its webhooks processed: (payment id, gateway reference)."""
    price = await make_price(amount)
    checkout = await shopper.data(CHECKOUT, {"input": checkout_input(price, capture_method=capture_method)})
    payment_id = checkout["checkout"]["payment"]["id"]
    await settle(services)
    payment = await Payment.get(id=payment_id)
    assert payment.gateway_reference
    return payment_id, payment.gateway_reference


async def test_a_capture_whose_answer_was_lost_is_retried_with_the_same_key_and_captures_once(
    shopper: Shopper,
    admin: Shopper,
    services: Services,
    sandbox_alone: SandboxProcessor,
    retries: Callable[[int], None],
) -> None:
    retries(3)
    payment_id, reference = await charged(shopper, services, 5300, "MANUAL")
    sandbox_alone.arm_fault("timeout", 1)

    captured = await admin.data(CAPTURE, {"input": {"paymentId": payment_id, "idempotencyKey": new_key()}})

    assert codes(captured["capturePayment"]) == []
    assert captured["capturePayment"]["payment"]["status"] == "PAID"
    assert (await sandbox_alone.retrieve(reference)).amount_received == 5300


async def test_a_void_whose_answer_was_lost_is_retried_with_the_same_key(
    shopper: Shopper,
    admin: Shopper,
    services: Services,
    sandbox_alone: SandboxProcessor,
    retries: Callable[[int], None],
) -> None:
    retries(3)
    payment_id, reference = await charged(shopper, services, 5350, "MANUAL")
    sandbox_alone.arm_fault("timeout", 1)

    voided = await admin.data(CANCEL, {"input": {"paymentId": payment_id, "idempotencyKey": new_key()}})

    assert codes(voided["cancelPayment"]) == []
    assert voided["cancelPayment"]["payment"]["status"] == "CANCELED"
    assert (await sandbox_alone.retrieve(reference)).status == "canceled"


async def test_a_refund_whose_answer_was_lost_is_retried_with_the_same_key_and_refunds_once(
    shopper: Shopper,
    admin: Shopper,
    services: Services,
    sandbox_alone: SandboxProcessor,
    retries: Callable[[int], None],
) -> None:
    retries(3)
    payment_id, reference = await charged(shopper, services, 5400, "AUTOMATIC")
    sandbox_alone.arm_fault("timeout", 1)

    variables = {"input": {"paymentId": payment_id, "amount": 1000, "reason": "damaged", "idempotencyKey": new_key()}}
    refunded = (await admin.data(REFUND, variables))["refundPayment"]

    assert codes(refunded) == []
    assert refunded["refund"]["status"] == "SUCCEEDED"
    # A second refund under another key would have gone through too (the capture covers it): one did.
    assert (await sandbox_alone.retrieve(reference)).amount_refunded == 1000
