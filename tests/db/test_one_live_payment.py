"""The database refuses a second payment in flight or succeeded for one order (migration 0005),
whatever the application checked, and still records a failed payment the gateway later took."""

from __future__ import annotations

import uuid

import pytest
from tortoise.exceptions import IntegrityError

from db import transitions
from db.models import Customer, EventSource, Order, Payment
from db.transitions import Actor, PaymentUpdate
from db.unit_of_work import unit_of_work
from domain.statuses import PaymentStatus

TEST_ACTOR = Actor(name="system:test")
LIVE = [
    PaymentStatus.PENDING,
    PaymentStatus.REQUIRES_ACTION,
    PaymentStatus.PROCESSING,
    PaymentStatus.AUTHORIZED,
    PaymentStatus.PAID,
]


async def an_order() -> Order:
    customer = await Customer.create(external_id=f"customer-{uuid.uuid4().hex}")
    return await Order.create(customer=customer, currency="USD", total_amount=1500)


async def a_payment(order: Order, status: PaymentStatus = PaymentStatus.PENDING, **fields: object) -> Payment:
    payment_id = uuid.uuid4()
    return await Payment.create(
        id=payment_id,
        order=order,
        gateway="sandbox",
        idempotency_key=f"payment-{payment_id}",
        payment_method="pm_card_visa",
        currency="USD",
        amount=1500,
        status=status,
        **fields,
    )


@pytest.mark.parametrize("first", LIVE)
@pytest.mark.parametrize("second", [PaymentStatus.PENDING, PaymentStatus.PAID])
async def test_a_second_live_payment_is_refused_by_the_database(
    server: str, first: PaymentStatus, second: PaymentStatus
) -> None:
    order = await an_order()
    await a_payment(order, first)

    with pytest.raises(IntegrityError):
        await a_payment(order, second)

    assert await Payment.filter(order_id=order.id).count() == 1


async def test_a_payment_cannot_become_live_beside_another(server: str) -> None:
    order = await an_order()
    await a_payment(order, PaymentStatus.PAID)
    canceled = await a_payment(order, PaymentStatus.CANCELED)

    with pytest.raises(IntegrityError):
        await Payment.filter(id=canceled.id).update(status=PaymentStatus.PENDING)


async def test_failed_and_canceled_payments_leave_room_for_a_new_one(server: str) -> None:
    order = await an_order()
    await a_payment(order, PaymentStatus.FAILED, decline_code="generic_decline", failure_message="Declined.")
    await a_payment(order, PaymentStatus.CANCELED)
    await a_payment(order, PaymentStatus.PENDING)

    assert await Payment.filter(order_id=order.id).count() == 3


async def test_a_failed_payment_the_gateway_later_took_is_recorded_beside_the_paid_one(server: str) -> None:
    order = await an_order()
    failed = await a_payment(order)
    async with unit_of_work() as uow:
        locked_order, locked = await transitions.lock_payment(failed.id, uow)
        await transitions.apply_payment_update(
            locked_order,
            locked,
            PaymentUpdate(status=PaymentStatus.FAILED),
            source=EventSource.API,
            actor=TEST_ACTOR,
            uow=uow,
        )
    assert (await Payment.get(id=failed.id)).failure_message == transitions.FAILED_WITHOUT_REASON
    await a_payment(order, PaymentStatus.PAID, amount_captured=1500)

    async with unit_of_work() as uow:
        locked_order, locked = await transitions.lock_payment(failed.id, uow)
        moved = await transitions.apply_payment_update(
            locked_order,
            locked,
            PaymentUpdate(status=PaymentStatus.PAID, amount_captured=1500),
            source=EventSource.RECONCILIATION,
            actor=TEST_ACTOR,
            uow=uow,
        )

    assert moved.changed
    assert sorted(p.status for p in await Payment.filter(order_id=order.id)) == ["PAID", "PAID"]
