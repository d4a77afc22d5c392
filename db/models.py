"""Tortoise models: the catalog, orders, payments and their ledger, refunds, webhook deliveries,
idempotency records and the audit log.

Money is BigInt minor units plus an ISO-4217 code. Status columns are written only by
`db.transitions`; ledger and audit rows are append-only.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from tortoise import fields
from tortoise.models import Model

from db.append_only import AppendOnlyModel
from db.fields import currency_field, enum_field, money_field
from domain.statuses import CaptureMethod, OrderStatus, PaymentStatus, RefundStatus


class PriceType(StrEnum):
    ONE_TIME = "ONE_TIME"
    RECURRING = "RECURRING"


class RecurringInterval(StrEnum):
    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    YEAR = "YEAR"


class EventSource(StrEnum):
    API = "API"  # a server-to-server gateway response to our own call
    WEBHOOK = "WEBHOOK"
    RECONCILIATION = "RECONCILIATION"
    ADMIN = "ADMIN"


class PaymentEventType(StrEnum):
    CREATED = "CREATED"
    REQUIRES_ACTION = "REQUIRES_ACTION"
    PROCESSING = "PROCESSING"
    AUTHORIZED = "AUTHORIZED"
    CAPTURED = "CAPTURED"
    FAILED = "FAILED"
    VOIDED = "VOIDED"
    REFUNDED = "REFUNDED"
    REFUND_REVERSED = "REFUND_REVERSED"


class WebhookStatus(StrEnum):
    RECEIVED = "RECEIVED"
    PROCESSED = "PROCESSED"
    IGNORED = "IGNORED"
    FAILED = "FAILED"
    DEAD = "DEAD"


class IdempotencyState(StrEnum):
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


class OutboxStatus(StrEnum):
    PENDING = "PENDING"
    SENT = "SENT"
    FAILED = "FAILED"
    DEAD = "DEAD"


class Customer(Model):
    id = fields.UUIDField(primary_key=True)
    external_id = fields.CharField(max_length=255, unique=True)
    email = fields.CharField(max_length=320, null=True)
    gateway_references: Any = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "customers"


class Product(Model):
    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=200)
    description = fields.TextField(default="")
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    prices: fields.ReverseRelation[Price]

    class Meta:
        table = "products"


class Price(Model):
    id = fields.UUIDField(primary_key=True)
    product: fields.ForeignKeyRelation[Product] = fields.ForeignKeyField(
        "models.Product", related_name="prices", on_delete=fields.RESTRICT
    )
    product_id: UUID
    lookup_key = fields.CharField(max_length=100, unique=True, null=True)
    currency = currency_field()
    unit_amount = money_field()
    type = enum_field(PriceType)
    recurring_interval = enum_field(RecurringInterval, null=True)
    recurring_interval_count = fields.IntField(default=1)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "prices"


class Order(Model):
    id = fields.UUIDField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="orders", on_delete=fields.RESTRICT
    )
    customer_id: UUID
    status = enum_field(OrderStatus, default=OrderStatus.PENDING)
    currency = currency_field()
    total_amount = money_field()
    return_url = fields.CharField(max_length=2000, null=True)
    checkout_ip = fields.CharField(max_length=64, null=True)
    checkout_user_agent = fields.CharField(max_length=512, null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    updated_at = fields.DatetimeField(auto_now=True)

    line_items: fields.ReverseRelation[LineItem]
    payments: fields.ReverseRelation[Payment]

    class Meta:
        table = "orders"
        indexes = (("customer_id", "created_at"), ("status", "created_at"))


class LineItem(Model):
    id = fields.UUIDField(primary_key=True)
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="line_items", on_delete=fields.CASCADE
    )
    order_id: UUID
    price: fields.ForeignKeyRelation[Price] = fields.ForeignKeyField(
        "models.Price", related_name="line_items", on_delete=fields.RESTRICT
    )
    price_id: UUID
    product_name = fields.CharField(max_length=200)
    quantity = fields.IntField()
    currency = currency_field()
    unit_amount = money_field()
    total_amount = money_field()

    class Meta:
        table = "line_items"


class Payment(Model):
    id = fields.UUIDField(primary_key=True)
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="payments", on_delete=fields.RESTRICT
    )
    order_id: UUID
    gateway = fields.CharField(max_length=32)
    gateway_reference = fields.CharField(max_length=255, null=True, db_index=True)
    # Sent to the gateway on every call about this payment; derived from our id, so it is unique.
    idempotency_key = fields.CharField(max_length=128, unique=True)
    status = enum_field(PaymentStatus, default=PaymentStatus.PENDING)
    capture_method = enum_field(CaptureMethod, default=CaptureMethod.AUTOMATIC)
    payment_method = fields.CharField(max_length=255)
    currency = currency_field()
    amount = money_field()
    amount_authorized = money_field()
    amount_captured = money_field()
    amount_refunded = money_field()
    decline_code = fields.CharField(max_length=64, null=True)
    failure_message = fields.CharField(max_length=500, null=True)
    next_action: Any = fields.JSONField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    updated_at = fields.DatetimeField(auto_now=True)

    events: fields.ReverseRelation[PaymentEvent]

    class Meta:
        table = "payments"
        unique_together = (("gateway", "gateway_reference"),)


class PaymentEvent(AppendOnlyModel):
    """The ledger: one row per thing that happened to a payment, once per dedupe key."""

    id = fields.BigIntField(primary_key=True)
    payment: fields.ForeignKeyRelation[Payment] = fields.ForeignKeyField(
        "models.Payment", related_name="events", on_delete=fields.RESTRICT
    )
    payment_id: UUID
    type = enum_field(PaymentEventType)
    dedupe_key = fields.CharField(max_length=255)
    source = enum_field(EventSource)
    status_before = enum_field(PaymentStatus, null=True)
    status_after = enum_field(PaymentStatus)
    amount = money_field()
    currency = currency_field()
    data: Any = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "payment_events"
        unique_together = (("payment_id", "dedupe_key"),)


class Refund(Model):
    id = fields.UUIDField(primary_key=True)
    payment: fields.ForeignKeyRelation[Payment] = fields.ForeignKeyField(
        "models.Payment", related_name="refunds", on_delete=fields.RESTRICT
    )
    payment_id: UUID
    gateway_reference = fields.CharField(max_length=255, null=True, db_index=True)
    idempotency_key = fields.CharField(max_length=128, unique=True)
    status = enum_field(RefundStatus, default=RefundStatus.PENDING)
    currency = currency_field()
    amount = money_field()
    reason = fields.CharField(max_length=500, default="")
    failure_reason = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "refunds"


class WebhookEvent(Model):
    """A raw, verified gateway delivery, stored before any processing. The event table is the truth."""

    id = fields.BigIntField(primary_key=True)
    gateway = fields.CharField(max_length=32)
    event_id = fields.CharField(max_length=255)
    event_type = fields.CharField(max_length=128)
    status = enum_field(WebhookStatus, default=WebhookStatus.RECEIVED)
    attempts = fields.IntField(default=0)
    headers: Any = fields.JSONField(default=dict)
    body = fields.TextField()
    source_ip = fields.CharField(max_length=64, null=True)
    received_at = fields.DatetimeField(auto_now_add=True, db_index=True)
    next_attempt_at = fields.DatetimeField(null=True)
    processed_at = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)

    class Meta:
        table = "webhook_events"
        unique_together = (("gateway", "event_id"),)
        indexes = (("status", "next_attempt_at"),)


class IdempotencyRecord(Model):
    """One client request per (scope, key): its fingerprint, its lease and its stored response."""

    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=255)
    key = fields.CharField(max_length=255)
    request_hash = fields.CharField(max_length=64)
    state = enum_field(IdempotencyState, default=IdempotencyState.IN_PROGRESS)
    response: Any = fields.JSONField(null=True)
    # Ids created by the first attempt, so a retry after a crash resumes instead of starting over.
    recovery_point: Any = fields.JSONField(default=dict)
    locked_until = fields.DatetimeField()
    expires_at = fields.DatetimeField(db_index=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "idempotency_records"
        unique_together = (("scope", "key"),)


class AuditRecord(AppendOnlyModel):
    """Who did what to which entity, when and why. Never updated, never deleted."""

    id = fields.BigIntField(primary_key=True)
    actor = fields.CharField(max_length=255)
    action = fields.CharField(max_length=64)
    entity_type = fields.CharField(max_length=32)
    entity_id = fields.CharField(max_length=64, db_index=True)
    status_before = fields.CharField(max_length=32, null=True)
    status_after = fields.CharField(max_length=32, null=True)
    amount = fields.BigIntField(null=True)
    currency = fields.CharField(max_length=3, null=True)
    reason = fields.CharField(max_length=500, default="")
    request_id = fields.CharField(max_length=64, null=True)
    source_ip = fields.CharField(max_length=64, null=True)
    data: Any = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True, db_index=True)

    class Meta:
        table = "audit_records"


class OutboxMessage(Model):
    """A side effect (an email, a notification) written in the same transaction as the change that
    caused it, and dispatched at least once afterwards. Unique by dedupe key: one receipt per order."""

    id = fields.BigIntField(primary_key=True)
    kind = fields.CharField(max_length=64)
    dedupe_key = fields.CharField(max_length=255, unique=True)
    payload: Any = fields.JSONField(default=dict)
    status = enum_field(OutboxStatus, default=OutboxStatus.PENDING)
    attempts = fields.IntField(default=0)
    next_attempt_at = fields.DatetimeField(null=True)
    last_error = fields.TextField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    sent_at = fields.DatetimeField(null=True)

    class Meta:
        table = "outbox_messages"
        indexes = (("status", "next_attempt_at"),)
