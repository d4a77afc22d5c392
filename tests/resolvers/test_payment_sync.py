"""`resolvers.payment_sync`: every fact about a payment reaches it under the payment's lock, once.

The same capture told by the API answer and then by a webhook moves the money once. Two facts whose
transactions overlap on PostgreSQL: the first is held open after it locked the payment until the
second is seen waiting on a lock (pg_stat_activity) or reaches the writer itself; only the lock keeps
the second from reading the payment as it was and recording the capture twice.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest

from db import transitions
from db.models import Customer, EventSource, Order, Payment, PaymentEvent, PaymentEventType
from db.transitions import Actor, PaymentChangeResult, PaymentUpdate
from domain.money import Money
from domain.statuses import OrderStatus, PaymentStatus
from gateways.types import PaymentResult
from resolvers.payment_sync import sync_payment
from tests.backends import Backend, backend_name
from tests.database_held import until_blocked_on_a_lock_or

pytestmark = pytest.mark.usefixtures("server")

AMOUNT = 2500
API = Actor("customer:shopper", reason="checkout")
WEBHOOK = Actor("gateway:sandbox", reason="webhook payment_intent.succeeded evt_1")


async def pending_payment() -> Payment:
    customer = await Customer.create(external_id=f"customer-{uuid.uuid4().hex}")
    order = await Order.create(customer=customer, currency="EUR", total_amount=AMOUNT, status=OrderStatus.PROCESSING)
    payment_id = uuid.uuid4()
    return await Payment.create(
        id=payment_id,
        order=order,
        gateway="sandbox",
        idempotency_key=f"payment-{payment_id}",
        payment_method="pm_card_visa",
        currency="EUR",
        amount=AMOUNT,
    )


def paid(payment: Payment) -> PaymentResult:
    """The gateway's copy of the payment once captured in full."""
    return PaymentResult(
        reference=f"pi_{payment.id.hex[:12]}",
        status=PaymentStatus.PAID,
        amount=Money(AMOUNT, "EUR"),
        payql_payment_id=str(payment.id),
        amount_authorized=AMOUNT,
        amount_captured=AMOUNT,
        gateway_status="succeeded",
    )


async def captures(payment: Payment) -> list[int]:
    events = PaymentEvent.filter(payment_id=payment.id, type=PaymentEventType.CAPTURED)
    return [event.amount for event in await events]


async def test_the_api_answer_and_the_webhook_for_one_capture_move_the_money_once() -> None:
    payment = await pending_payment()
    first = await sync_payment(payment.id, paid(payment), source=EventSource.API, actor=API)
    again = await sync_payment(
        payment.id, paid(payment), source=EventSource.WEBHOOK, actor=WEBHOOK, dedupe_key="webhook:evt_1"
    )
    assert (first.changed, again.changed) == (True, False)
    assert (first.payment.status, first.order.status) == (PaymentStatus.PAID, OrderStatus.PAID)
    assert await captures(payment) == [AMOUNT]


async def test_a_normalized_fact_takes_the_same_path() -> None:
    payment = await pending_payment()
    declined = PaymentUpdate(status=PaymentStatus.FAILED, decline_code="card_declined", failure_message="Declined.")
    synced = await sync_payment(payment.id, declined, source=EventSource.API, actor=API)
    assert synced.changed
    fresh = await Payment.get(id=payment.id)
    assert (fresh.status, fresh.decline_code) == (PaymentStatus.FAILED, "card_declined")


class Overlap:
    """Holds the first fact's transaction open inside the payment writer, after the payment is locked."""

    def __init__(self) -> None:
        self.calls = 0
        self.first_locked = asyncio.Event()
        self.second_reached = asyncio.Event()
        self.release_first = asyncio.Event()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        apply = transitions.apply_payment_update

        async def held(*args: Any, **kwargs: Any) -> PaymentChangeResult:
            self.calls += 1
            if self.calls == 1:
                self.first_locked.set()
                await self.release_first.wait()
            else:
                self.second_reached.set()
            return await apply(*args, **kwargs)

        monkeypatch.setattr(transitions, "apply_payment_update", held)


async def second_waits_or_reaches(database_url: str, overlap: Overlap) -> None:
    await until_blocked_on_a_lock_or(database_url, overlap.second_reached)
    overlap.release_first.set()


@pytest.mark.skipif(
    backend_name() != "servers",
    reason="SQLite runs one write transaction at a time: two facts can overlap only on PostgreSQL",
)
async def test_overlapping_facts_about_one_payment_record_the_capture_once(
    backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    payment = await pending_payment()
    overlap = Overlap()
    overlap.install(monkeypatch)

    first = asyncio.create_task(sync_payment(payment.id, paid(payment), source=EventSource.API, actor=API))
    await asyncio.wait_for(overlap.first_locked.wait(), 10)
    second = asyncio.create_task(
        sync_payment(payment.id, paid(payment), source=EventSource.WEBHOOK, actor=WEBHOOK, dedupe_key="webhook:evt_1")
    )
    await asyncio.wait_for(second_waits_or_reaches(backend.database_url, overlap), 10)
    results = await asyncio.wait_for(asyncio.gather(first, second), 20)

    assert [result.changed for result in results] == [True, False]
    assert await captures(payment) == [AMOUNT]
    assert (await Payment.get(id=payment.id)).amount_captured == AMOUNT
