"""Tortoise models: the catalog, orders, payments and their ledger, refunds, disputes, subscriptions
and their invoices, webhook deliveries, idempotency records and the audit log.

Money is BigInt minor units plus an ISO-4217 code. Status columns are written only by
`db.transitions`; ledger and audit rows are append-only. Personal data (a customer's email, the
checkout's IP and user agent, evidence, notes, tracking numbers, gateway payloads, the caller's IP in
the audit trail) is sealed at rest by the encrypted fields of `db.fields`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from tortoise import fields
from tortoise.models import Model
from tortoise.queryset import QuerySet

from db.append_only import AppendOnlyModel
from db.encryption import installed_data_keys
from db.fields import EncryptedJSONField, EncryptedTextField, currency_field, enum_field, money_field
from domain.statuses import (
    CaptureMethod,
    DisputeStatus,
    InvoiceStatus,
    OrderStatus,
    PaymentStatus,
    RefundStatus,
    SubscriptionStatus,
)


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
    DISPUTE_WITHDRAWN = "DISPUTE_WITHDRAWN"  # the disputed amount taken back by the card network
    DISPUTE_REINSTATED = "DISPUTE_REINSTATED"  # a won dispute gives it back


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
    email = EncryptedTextField(null=True, blind_index="email_index")
    # The blind index of the email (db.encryption.DataKeys.blind_index): find a customer by email.
    email_index = fields.CharField(max_length=64, null=True, db_index=True)
    gateway_references: Any = fields.JSONField(default=dict)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "customers"

    @classmethod
    def with_email(cls, email: str) -> QuerySet[Customer]:
        """Customers with this email (case and surrounding spaces aside), found by its blind index:
        a filter on the sealed column itself never matches."""
        return cls.filter(email_index=installed_data_keys().blind_index(email))

    async def save(self, *args: Any, **kwargs: Any) -> None:
        """Keep the email's blind index in step with the email on every save that writes it."""
        update_fields = kwargs.get("update_fields")
        if update_fields is None or "email" in update_fields:
            self.email_index = installed_data_keys().blind_index(self.email) if self.email else None
            if update_fields is not None and "email_index" not in update_fields:
                kwargs["update_fields"] = [*update_fields, "email_index"]
        await super().save(*args, **kwargs)


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
    # Recurring prices billed in arrears on reported usage x unit amount. Nullable only so SQLite can
    # add the column to existing rows: NULL means licensed (billed per period in advance).
    metered = fields.BooleanField(null=True)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "prices"
        # Foreign keys are indexed (0008): lookups by them, and the checks a parent's delete makes.
        indexes = (("product_id",),)


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
    checkout_ip = EncryptedTextField(null=True)
    checkout_user_agent = EncryptedTextField(null=True)
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
        # Foreign keys are indexed (0008): lookups by them, and the checks a parent's delete makes.
        indexes = (("order_id",), ("price_id",))


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
    # TEXT: a browser SDK's encrypted card data (the `paymentMethod` some gateways take) runs to kilobytes.
    payment_method = fields.TextField()
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
        # An order's payments are read by order, oldest first, several times per checkout (0008).
        indexes = (("order_id", "created_at"),)


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
        # Foreign keys are indexed (0008): lookups by them, and the checks a parent's delete makes.
        indexes = (("payment_id",),)


class WebhookEvent(Model):
    """A raw, verified gateway delivery, stored before any processing. The event table is the truth."""

    id = fields.BigIntField(primary_key=True)
    gateway = fields.CharField(max_length=32)
    event_id = fields.CharField(max_length=255)
    event_type = fields.CharField(max_length=128)
    status = enum_field(WebhookStatus, default=WebhookStatus.RECEIVED)
    attempts = fields.IntField(default=0)
    headers: Any = fields.JSONField(default=dict)
    body = EncryptedTextField()  # the gateway's event: customer emails, names, addresses
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
    recovery_point: Any = EncryptedJSONField(default=dict)  # may hold evidence sent to a gateway
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
    # The one column the database lets change: re-sealed under a newer key by `payql keys rotate`.
    source_ip = EncryptedTextField(null=True)
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


class Dispute(Model):
    """A chargeback on one payment, mirrored from the gateway, with the evidence we gathered for it."""

    id = fields.UUIDField(primary_key=True)
    payment: fields.ForeignKeyRelation[Payment] = fields.ForeignKeyField(
        "models.Payment", related_name="disputes", on_delete=fields.RESTRICT
    )
    payment_id: UUID
    gateway = fields.CharField(max_length=32)
    gateway_reference = fields.CharField(max_length=255)
    status = enum_field(DisputeStatus, default=DisputeStatus.NEEDS_RESPONSE)
    reason = fields.CharField(max_length=100, default="")
    currency = currency_field()
    amount = money_field()
    evidence_due_by = fields.DatetimeField(null=True, db_index=True)
    # Gathered when the dispute is created and completed by the merchant's notes and fulfillments.
    evidence: Any = EncryptedJSONField(default=dict)
    evidence_submitted_at = fields.DatetimeField(null=True)
    due_soon_flagged_at = fields.DatetimeField(null=True)
    closed_at = fields.DatetimeField(null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "disputes"
        unique_together = (("gateway", "gateway_reference"),)
        # Foreign keys are indexed (0008): lookups by them, and the checks a parent's delete makes.
        indexes = (("payment_id",),)


class DisputeNote(Model):
    id = fields.BigIntField(primary_key=True)
    dispute: fields.ForeignKeyRelation[Dispute] = fields.ForeignKeyField(
        "models.Dispute", related_name="notes", on_delete=fields.RESTRICT
    )
    dispute_id: UUID
    author = fields.CharField(max_length=255)
    body = EncryptedTextField()
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "dispute_notes"
        # Foreign keys are indexed (0008): lookups by them, and the checks a parent's delete makes.
        indexes = (("dispute_id",),)


class Fulfillment(Model):
    """A shipment (or delivery of a service) the merchant recorded for an order: dispute evidence."""

    id = fields.BigIntField(primary_key=True)
    order: fields.ForeignKeyRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="fulfillments", on_delete=fields.RESTRICT
    )
    order_id: UUID
    carrier = fields.CharField(max_length=100)
    tracking_number = EncryptedTextField()  # the carrier shows the recipient's name and address for it
    shipped_at = fields.DatetimeField(null=True)
    recorded_by = fields.CharField(max_length=255)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "fulfillments"
        # Foreign keys are indexed (0008): lookups by them, and the checks a parent's delete makes.
        indexes = (("order_id",),)


class Subscription(Model):
    """A customer's subscription to one recurring price, mirrored from the gateway's billing engine.

    The gateway's state is the truth. `gateway_updated` is when the gateway last changed the copy we
    applied, so an older copy (a late event) never overwrites a newer one. The dunning columns belong
    to our retry schedule.
    """

    id = fields.UUIDField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "models.Customer", related_name="subscriptions", on_delete=fields.RESTRICT
    )
    customer_id: UUID
    price: fields.ForeignKeyRelation[Price] = fields.ForeignKeyField(
        "models.Price", related_name="subscriptions", on_delete=fields.RESTRICT
    )
    price_id: UUID
    pending_price: fields.ForeignKeyNullableRelation[Price] = fields.ForeignKeyField(
        "models.Price", related_name="pending_subscriptions", on_delete=fields.RESTRICT, null=True
    )
    pending_price_id: UUID | None
    gateway = fields.CharField(max_length=32)
    gateway_reference = fields.CharField(max_length=255, null=True)
    idempotency_key = fields.CharField(max_length=128, unique=True)
    status = enum_field(SubscriptionStatus, default=SubscriptionStatus.INCOMPLETE)
    currency = currency_field()
    unit_amount = money_field()
    # TEXT: a browser SDK's encrypted card data (the `paymentMethod` some gateways take) runs to kilobytes.
    payment_method = fields.TextField()
    trial_end = fields.DatetimeField(null=True)
    current_period_start = fields.DatetimeField(null=True)
    current_period_end = fields.DatetimeField(null=True)
    cancel_at_period_end = fields.BooleanField(default=False)
    canceled_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)
    gateway_updated = fields.BigIntField(default=0)
    failed_attempts = fields.IntField(default=0)
    next_retry_at = fields.BigIntField(null=True, db_index=True)  # the billing clock's epoch seconds
    grace_until = fields.BigIntField(null=True)  # the billing clock's epoch seconds
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    invoices: fields.ReverseRelation[Invoice]

    class Meta:
        table = "subscriptions"
        unique_together = (("gateway", "gateway_reference"),)
        # The price foreign keys are indexed (0008) for the checks a price's delete makes.
        indexes = (("customer_id", "created_at"), ("status", "next_retry_at"), ("price_id",), ("pending_price_id",))


class Invoice(Model):
    """One invoice of a subscription. Its payment is an ordinary order and payment (`order`), so the
    ledger, receipts, refunds and disputes work for renewals exactly as for one-time purchases."""

    id = fields.UUIDField(primary_key=True)
    subscription: fields.ForeignKeyRelation[Subscription] = fields.ForeignKeyField(
        "models.Subscription", related_name="invoices", on_delete=fields.RESTRICT
    )
    subscription_id: UUID
    order: fields.ForeignKeyNullableRelation[Order] = fields.ForeignKeyField(
        "models.Order", related_name="invoices", on_delete=fields.RESTRICT, null=True
    )
    order_id: UUID | None
    gateway = fields.CharField(max_length=32)
    gateway_reference = fields.CharField(max_length=255)
    status = enum_field(InvoiceStatus, default=InvoiceStatus.OPEN)
    billing_reason = fields.CharField(max_length=64, default="")
    currency = currency_field()
    amount_due = money_field()
    amount_paid = money_field()
    period_start = fields.DatetimeField(null=True)
    period_end = fields.DatetimeField(null=True)
    attempt_count = fields.IntField(default=0)
    payment_reference = fields.CharField(max_length=255, null=True)
    next_action: Any = fields.JSONField(null=True)
    decline_code = fields.CharField(max_length=64, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)
    updated_at = fields.DatetimeField(auto_now=True)

    class Meta:
        table = "invoices"
        unique_together = (("gateway", "gateway_reference"),)
        # Foreign keys are indexed (0008): lookups by them, and the checks a parent's delete makes.
        indexes = (("subscription_id", "created_at"), ("order_id",))


class UsageRecord(Model):
    """Metered usage reported for a subscription, once per idempotency key."""

    id = fields.BigIntField(primary_key=True)
    subscription: fields.ForeignKeyRelation[Subscription] = fields.ForeignKeyField(
        "models.Subscription", related_name="usage_records", on_delete=fields.RESTRICT
    )
    subscription_id: UUID
    price: fields.ForeignKeyRelation[Price] = fields.ForeignKeyField(
        "models.Price", related_name="usage_records", on_delete=fields.RESTRICT
    )
    price_id: UUID
    quantity = fields.BigIntField()
    timestamp = fields.DatetimeField()
    idempotency_key = fields.CharField(max_length=128)
    gateway_reference = fields.CharField(max_length=255, null=True)
    created_at = fields.DatetimeField(auto_now_add=True)

    class Meta:
        table = "usage_records"
        unique_together = (("subscription_id", "idempotency_key"),)
        # Foreign keys are indexed (0008): lookups by them, and the checks a parent's delete makes.
        indexes = (("price_id",),)
