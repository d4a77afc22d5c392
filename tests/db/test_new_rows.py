"""`new_row`: the instance the model's constructor builds, field for field, on every model; what the
constructor refuses is refused the same way."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from tortoise.exceptions import OperationalError
from tortoise.fields.base import DatabaseDefault
from tortoise.models import Model

from db import models
from db.models import (
    AuditRecord,
    Customer,
    EventSource,
    IdempotencyRecord,
    LineItem,
    Order,
    OutboxMessage,
    Payment,
    PaymentEvent,
    PaymentEventType,
)
from db.new_rows import new_row
from domain.statuses import CaptureMethod, PaymentStatus

pytestmark = pytest.mark.usefixtures("server")

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ORDER_ID, PAYMENT_ID, CUSTOMER_ID = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()

# What the money path gives each model it builds a row of, as it gives it.
MONEY_PATH: list[tuple[type[Model], dict[str, Any]]] = [
    (
        Order,
        {
            "customer_id": CUSTOMER_ID,
            "currency": "EUR",
            "total_amount": 700,
            "return_url": None,
            "checkout_ip": "198.51.100.7",
            "checkout_user_agent": "Mozilla/5.0",
        },
    ),
    (
        LineItem,
        {
            "order_id": ORDER_ID,
            "price_id": uuid.uuid4(),
            "product_name": "Widget",
            "quantity": 2,
            "currency": "EUR",
            "unit_amount": 350,
            "total_amount": 700,
        },
    ),
    (
        Payment,
        {
            "id": PAYMENT_ID,
            "order_id": ORDER_ID,
            "gateway": "sandbox",
            "idempotency_key": f"payql-payment-{PAYMENT_ID}-1",
            "capture_method": CaptureMethod.AUTOMATIC,
            "payment_method": "pm_card_visa",
            "currency": "EUR",
            "amount": 700,
        },
    ),
    (
        PaymentEvent,
        {
            "payment_id": PAYMENT_ID,
            "type": PaymentEventType.CAPTURED,
            "dedupe_key": "fact:PENDING>PAID",
            "source": EventSource.API,
            "status_before": PaymentStatus.PENDING,
            "status_after": PaymentStatus.PAID,
            "amount": 700,
            "currency": "EUR",
            "data": {"gateway_status": "succeeded", "decline_code": None},
        },
    ),
    (OutboxMessage, {"kind": "receipt", "dedupe_key": f"receipt:{ORDER_ID}", "payload": {"order_id": str(ORDER_ID)}}),
    (
        IdempotencyRecord,
        {"scope": "customer:a:checkout", "key": "k1", "request_hash": "0" * 64, "locked_until": NOW, "expires_at": NOW},
    ),
    (
        AuditRecord,
        {
            "actor": "customer:a",
            "action": "payment.paid",
            "entity_type": "payment",
            "entity_id": str(PAYMENT_ID),
            "status_before": "PENDING",
            "status_after": "PAID",
            "amount": 700,
            "currency": "EUR",
            "request_id": "r1",
            "source_ip": "198.51.100.7",
            "reason": "checkout",
            "data": {},
            "created_at": NOW,
        },
    ),
]

EVERY_MODEL = sorted(
    (model for model in vars(models).values() if isinstance(model, type) and issubclass(model, Model)),
    key=lambda model: model.__name__,
)


def same_instance(built: Model, constructed: Model) -> None:
    """Every attribute the constructor set, set alike: made-per-row defaults (a new id, the time now, a
    database default's marker) of the same kind, every other value equal."""
    assert type(built) is type(constructed)
    assert vars(built).keys() == vars(constructed).keys()
    fields = type(built)._meta.fields_map
    for name, value in vars(constructed).items():
        field = fields.get(name)
        if isinstance(value, DatabaseDefault) or (field is not None and callable(field.default)):
            assert type(getattr(built, name)) is type(value), name
        else:
            assert getattr(built, name) == value, name


@pytest.mark.parametrize(("model", "fields"), MONEY_PATH, ids=lambda value: getattr(value, "__name__", ""))
def test_a_money_path_row_is_the_constructors(model: type[Model], fields: dict[str, Any]) -> None:
    same_instance(new_row(model, **fields), model(**fields))


@pytest.mark.parametrize("model", EVERY_MODEL, ids=lambda model: model.__name__)
def test_every_model_with_nothing_given_is_the_constructors(model: type[Model]) -> None:
    same_instance(new_row(model), model())


def test_a_relation_given_as_an_instance_sets_its_key_as_the_constructor_does() -> None:
    customer = Customer(id=CUSTOMER_ID, external_id="a")
    customer._saved_in_db = True
    built, constructed = new_row(Order, customer=customer, currency="EUR"), Order(customer=customer, currency="EUR")
    same_instance(built, constructed)
    assert built.customer_id == CUSTOMER_ID


def test_what_the_constructor_refuses_is_refused_alike() -> None:
    with pytest.raises(ValueError, match="currency is non nullable field"):
        new_row(Order, currency=None)
    unsaved = Customer(id=CUSTOMER_ID, external_id="a")
    with pytest.raises(OperationalError, match=r"first call \.save\(\)"):
        new_row(Order, customer=unsaved)


def test_a_database_generated_key_given_is_marked_as_the_constructor_marks_it() -> None:
    built = new_row(AuditRecord, id=5)
    same_instance(built, AuditRecord(id=5))
    assert built._custom_generated_pk
