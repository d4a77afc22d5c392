"""Reconciliation's two repair paths, each alone: settling an orphan that is still in flight, and
comparing a window of our payments with the gateway's list (which repairs a drift that is not in
flight, such as a payment we saw fail that the gateway charged).

Webhooks are held throughout: only reconciliation may tell PayQL what the gateway did.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from db import transitions
from db.ledger import ledger_mismatches
from db.models import EventSource, Payment, PaymentEvent, Refund
from db.transitions import Actor, PaymentUpdate
from db.unit_of_work import unit_of_work
from domain.statuses import PaymentStatus
from gateways.sandbox.processor import SandboxProcessor
from jobs.reconcile import reconcile
from payql.wiring import Services
from tests.testkit import (
    CHECKOUT,
    Shopper,
    checkout_input,
    make_price,
    new_key,
    sandbox_webhooks_held,
)

REFUND_PAYMENT = (
    "mutation($input: RefundPaymentInput!) { refundPayment(input: $input) { userErrors { code message } } }"
)


@pytest.fixture
async def held(services: Services, sandbox: SandboxProcessor) -> AsyncIterator[SandboxProcessor]:
    async with sandbox_webhooks_held(services):
        yield sandbox
        sandbox.clear_faults()


async def charged_with_the_answer_lost(shopper: Shopper, sandbox: SandboxProcessor) -> Payment:
    price = await make_price(3300)
    sandbox.arm_fault("timeout", 1)
    result = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    assert [e["code"] for e in result["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    payment = await Payment.get(id=result["payment"]["id"])
    assert payment.status == "PENDING" and payment.gateway_reference is None
    return payment


async def test_an_orphan_in_flight_is_settled_without_the_gateway_list(
    shopper: Shopper, held: SandboxProcessor, services: Services
) -> None:
    payment = await charged_with_the_answer_lost(shopper, held)

    # A window that starts in the future: the comparison with the gateway's list sees nothing.
    report = await reconcile(
        services.jobs.gateways,
        since=datetime.now(UTC) + timedelta(hours=1),
        orphan_age=timedelta(0),
        order_expiry=timedelta(days=1),
    )

    assert report.checked == 0 and report.settled >= 1
    settled = await Payment.get(id=payment.id)
    assert (settled.status, settled.amount_captured) == ("PAID", 3300)
    assert settled.gateway_reference is not None
    assert await PaymentEvent.filter(payment_id=payment.id, source="RECONCILIATION", type="CAPTURED").count() == 1


async def test_a_failed_payment_the_gateway_charged_is_repaired_by_the_comparison(
    shopper: Shopper, held: SandboxProcessor, services: Services
) -> None:
    payment = await charged_with_the_answer_lost(shopper, held)
    async with unit_of_work() as uow:
        order, locked = await transitions.lock_payment(payment.id, uow)
        await transitions.apply_payment_update(
            order,
            locked,
            PaymentUpdate(status=PaymentStatus.FAILED, failure_message="Lost in transit."),
            source=EventSource.ADMIN,
            actor=Actor(name="admin:test"),
            uow=uow,
        )

    # Orphans are only those in flight, and none is old enough: the list comparison must do it.
    report = await reconcile(
        services.jobs.gateways,
        since=datetime.now(UTC) - timedelta(minutes=5),
        orphan_age=timedelta(days=1),
        order_expiry=timedelta(days=1),
    )

    repaired = await Payment.get(id=payment.id)
    assert (repaired.status, repaired.amount_captured) == ("PAID", 3300)
    assert report.repaired >= 1 and report.settled == 0
    assert not [d for d in report.discrepancies if d.payment_id == str(payment.id)]
    assert await PaymentEvent.filter(payment_id=payment.id, source="RECONCILIATION", type="CAPTURED").count() == 1


async def test_a_refund_whose_answer_was_lost_is_settled_by_resending_it_once(
    shopper: Shopper, admin: Shopper, held: SandboxProcessor, services: Services
) -> None:
    price = await make_price(4100)
    paid = (await shopper.data(CHECKOUT, {"input": checkout_input(price)}))["checkout"]
    assert paid["payment"]["status"] == "PAID"
    # The sandbox makes the refund, then the answer is lost; the webhook that would tell us is held.
    held.arm_fault("timeout", 1)
    variables = {"input": {"paymentId": paid["payment"]["id"], "amount": 1500, "idempotencyKey": new_key()}}
    answer = (await admin.data(REFUND_PAYMENT, variables))["refundPayment"]
    assert [error["code"] for error in answer["userErrors"]] == ["GATEWAY_UNAVAILABLE"]
    refund = await Refund.get(payment_id=paid["payment"]["id"])
    assert (refund.status, refund.gateway_reference) == ("PENDING", None)

    report = await reconcile(
        services.jobs.gateways,
        since=datetime.now(UTC) + timedelta(hours=1),
        orphan_age=timedelta(0),
        order_expiry=timedelta(days=1),
    )

    assert report.settled >= 1
    settled = await Refund.get(id=refund.id)
    assert settled.status == "SUCCEEDED" and settled.gateway_reference is not None
    payment = await Payment.get(id=paid["payment"]["id"])
    assert payment.amount_refunded == 1500
    intent = await held.retrieve(payment.gateway_reference or "")
    assert intent.amount_refunded == 1500  # the resend carried the same key: one refund at the gateway
    assert [m for m in await ledger_mismatches() if m.payment_id == payment.id] == []
