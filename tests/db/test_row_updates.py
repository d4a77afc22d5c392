"""`update_columns`: the named columns of one row change, stored as the ORM stores them; nothing else does."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from tortoise import connections

from db.models import IdempotencyRecord, IdempotencyState, Order, Payment
from db.row_updates import save_columns, update_columns
from db.transaction import transaction
from domain.statuses import OrderStatus, PaymentStatus
from tests.db.test_row_reads import fields_of, make_order_with_payments

pytestmark = pytest.mark.usefixtures("server")


async def make_record() -> IdempotencyRecord:
    now = datetime.now(UTC)
    return await IdempotencyRecord.create(
        scope="customer:row-updates:checkout",
        key=uuid.uuid4().hex,
        request_hash="0" * 64,
        locked_until=now + timedelta(seconds=30),
        expires_at=now + timedelta(days=1),
    )


async def test_the_named_columns_change_as_the_orm_would_store_them() -> None:
    record, other = await make_record(), await make_record()
    response = {"order_id": str(uuid.uuid4()), "errors": [{"code": "X", "message": "é ✓"}]}

    values = {"state": IdempotencyState.COMPLETED, "response": response}
    await update_columns(IdempotencyRecord, record.id, values, connections.get("default"))

    again = await IdempotencyRecord.get(id=record.id)
    assert (again.state, again.response) == (IdempotencyState.COMPLETED, response)
    kept = (again.key, again.recovery_point, again.locked_until)
    assert kept == (record.key, record.recovery_point, record.locked_until)
    untouched = await IdempotencyRecord.get(id=other.id)
    assert (untouched.state, untouched.response) == (IdempotencyState.IN_PROGRESS, None)


async def test_an_unknown_row_changes_nothing() -> None:
    record = await make_record()
    missing = record.id + 10_000_000
    await update_columns(IdempotencyRecord, missing, {"recovery_point": {"a": 1}}, connections.get("default"))
    assert (await IdempotencyRecord.get(id=record.id)).recovery_point == record.recovery_point
    assert not await IdempotencyRecord.exists(id=missing)


async def test_a_saved_instance_writes_its_named_fields_and_stamps_auto_now_on_both() -> None:
    order, [payment] = await make_order_with_payments(1)
    before = payment.updated_at
    payment.status = PaymentStatus.PAID
    payment.amount_captured = 1500
    payment.amount = 1  # changed on the instance, not named: not written
    async with transaction() as connection:
        await save_columns(payment, ("status", "amount_captured", "updated_at"), connection)

    again = await Payment.get(id=payment.id)
    assert (again.status, again.amount_captured, again.amount) == (PaymentStatus.PAID, 1500, 1500)
    assert again.updated_at == payment.updated_at and payment.updated_at > before
    assert fields_of(again) == {**fields_of(payment), "amount": 1500}
    assert (await Order.get(id=order.id)).status is OrderStatus.PENDING
