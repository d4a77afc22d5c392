"""`read_rows`: rows read by a written-out WHERE clause are the rows the ORM reads, and behave like them."""

from __future__ import annotations

import uuid

import pytest
from tortoise import connections

from db.models import Customer, Order, Payment, Price, PriceType, Product
from db.row_reads import read_rows, read_rows_with
from db.transaction import transaction
from domain.statuses import OrderStatus, PaymentStatus

pytestmark = pytest.mark.usefixtures("server")


async def make_order_with_payments(count: int) -> tuple[Order, list[Payment]]:
    customer = await Customer.create(external_id=f"customer-{uuid.uuid4().hex}", email="reader@example.com")
    order = await Order.create(
        customer=customer, currency="EUR", total_amount=1500, return_url=f"https://shop.example/{uuid.uuid4()}"
    )
    payments = []
    for index in range(count):
        payment_id = uuid.uuid4()
        # One live payment per order: the earlier ones failed.
        status = PaymentStatus.PENDING if index == count - 1 else PaymentStatus.FAILED
        payments.append(
            await Payment.create(
                id=payment_id,
                order=order,
                gateway="sandbox",
                idempotency_key=f"payment-{payment_id}",
                payment_method="pm_card_visa",
                currency="EUR",
                amount=1500,
                status=status,
                next_action={"type": "REDIRECT", "redirect_url": "https://3ds.example/x"},
            )
        )
    return order, payments


def fields_of(row: Order | Payment | Price | Product) -> dict[str, object]:
    return {name: getattr(row, name) for name in row._meta.fields_db_projection}


async def test_rows_read_are_the_orms_rows_every_field_alike() -> None:
    order, made = await make_order_with_payments(2)
    connection = connections.get("default")

    read = await read_rows(Payment, "order_id = $1", [order.id], connection)

    by_orm = {p.id: fields_of(p) for p in await Payment.filter(order_id=order.id)}
    assert {p.id: fields_of(p) for p in read} == by_orm
    assert sorted(p.id for p in read) == sorted(p.id for p in made)
    assert all(p.next_action == {"type": "REDIRECT", "redirect_url": "https://3ds.example/x"} for p in read)
    [order_read] = await read_rows(Order, "id = $1", [order.id], connection)
    assert fields_of(order_read) == fields_of(await Order.get(id=order.id))
    assert order_read.created_at.tzinfo is not None


async def test_a_row_read_is_saved_in_full_so_an_update_writes_only_its_columns() -> None:
    order, [payment] = await make_order_with_payments(1)
    async with transaction() as connection:
        [locked] = await read_rows(Payment, "id = $1", [payment.id], connection, for_update=True)
        locked.status = PaymentStatus.PAID
        await locked.save(using_db=connection, update_fields=["status"])
    again = await Payment.get(id=payment.id)
    assert again.status is PaymentStatus.PAID
    assert (again.amount, again.order_id) == (1500, order.id)


async def test_no_match_is_no_rows_and_a_parameter_is_never_sql() -> None:
    order, _ = await make_order_with_payments(1)
    connection = connections.get("default")
    assert await read_rows(Order, "id = $1", [uuid.uuid4()], connection) == []
    assert await read_rows(Order, "return_url = $1", ["x' OR '1'='1"], connection) == []
    [found] = await read_rows(Order, "return_url = $1 AND status = $2", [order.return_url, "PENDING"], connection)
    assert found.status is OrderStatus.PENDING


async def make_prices(count: int, *, product_active: bool = True) -> tuple[Product, list[Price]]:
    product = await Product.create(name=f"Reader {uuid.uuid4().hex[:6]}", description="d", active=product_active)
    prices = [
        await Price.create(product=product, currency="EUR", unit_amount=100 + n, type=PriceType.ONE_TIME)
        for n in range(count)
    ]
    return product, prices


async def test_rows_read_with_their_parent_are_what_select_related_gives() -> None:
    product, prices = await make_prices(2)
    _, [elsewhere] = await make_prices(1)
    connection = connections.get("default")

    where = '"prices"."id" IN ($1, $2) ORDER BY "prices"."unit_amount"'
    read = await read_rows_with(Price, "product", where, [p.id for p in prices], connection)

    by_orm = await Price.filter(id__in=[p.id for p in prices]).select_related("product").order_by("unit_amount")
    assert [fields_of(p) for p in read] == [fields_of(p) for p in by_orm]
    assert [fields_of(p.product) for p in read] == [fields_of(p.product) for p in by_orm]
    # The parent's columns did not overwrite the row's own, though both tables have an id and an `active`.
    assert {p.product.id for p in read} == {product.id} and elsewhere.id not in {p.id for p in read}
    assert {p.id for p in read} == {p.id for p in prices}


async def test_a_parent_read_with_its_row_is_there_without_a_query() -> None:
    product, [price] = await make_prices(1, product_active=False)
    connection = connections.get("default")
    [read] = await read_rows_with(Price, "product", '"prices"."id" = $1', [price.id], connection)
    await Product.filter(id=product.id).update(name="Renamed")  # a query now would read the new name
    parent = read.product
    assert isinstance(parent, Product)
    assert (parent.id, parent.name, parent.active) == (product.id, product.name, False)


async def test_no_parent_no_row_and_only_a_foreign_key_joins() -> None:
    connection = connections.get("default")
    assert await read_rows_with(Price, "product", '"prices"."id" = $1', [uuid.uuid4()], connection) == []
    with pytest.raises(TypeError, match="not a foreign key"):
        await read_rows_with(Price, "currency", '"prices"."id" = $1', [uuid.uuid4()], connection)
