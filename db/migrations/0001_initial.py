import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from db.models import (
    EventSource,
    IdempotencyState,
    PaymentEventType,
    PriceType,
    RecurringInterval,
    WebhookStatus,
)
from domain.statuses import CaptureMethod, OrderStatus, PaymentStatus, RefundStatus


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="AuditRecord",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("actor", fields.CharField(max_length=255)),
                ("action", fields.CharField(max_length=64)),
                ("entity_type", fields.CharField(max_length=32)),
                ("entity_id", fields.CharField(db_index=True, max_length=64)),
                ("status_before", fields.CharField(null=True, max_length=32)),
                ("status_after", fields.CharField(null=True, max_length=32)),
                ("amount", fields.BigIntField(null=True)),
                ("currency", fields.CharField(null=True, max_length=3)),
                ("reason", fields.CharField(default="", max_length=500)),
                ("request_id", fields.CharField(null=True, max_length=64)),
                ("source_ip", fields.CharField(null=True, max_length=64)),
                (
                    "data",
                    fields.JSONField(
                        default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("created_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "audit_records",
                "app": "models",
                "pk_attr": "id",
                "table_description": "Who did what to which entity, when and why. Never updated, never deleted.",
            },
            bases=["AppendOnlyModel"],
        ),
        ops.CreateModel(
            name="Customer",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ("external_id", fields.CharField(unique=True, max_length=255)),
                ("email", fields.CharField(null=True, max_length=320)),
                (
                    "gateway_references",
                    fields.JSONField(
                        default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "customers", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="IdempotencyRecord",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("scope", fields.CharField(max_length=255)),
                ("key", fields.CharField(max_length=255)),
                ("request_hash", fields.CharField(max_length=64)),
                (
                    "state",
                    fields.CharEnumField(
                        default=IdempotencyState.IN_PROGRESS,
                        description="IN_PROGRESS: IN_PROGRESS\nCOMPLETED: COMPLETED",
                        enum_type=IdempotencyState,
                        max_length=32,
                    ),
                ),
                (
                    "response",
                    fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads),
                ),
                (
                    "recovery_point",
                    fields.JSONField(
                        default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("locked_until", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "idempotency_records",
                "app": "models",
                "unique_together": (("scope", "key"),),
                "pk_attr": "id",
                "table_description": "One client request per (scope, key): its fingerprint, its lease and its stored response.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Order",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "models.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="orders",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=OrderStatus.PENDING,
                        description="PENDING: PENDING\nREQUIRES_ACTION: REQUIRES_ACTION\nPROCESSING: PROCESSING\nAUTHORIZED: AUTHORIZED\nPAID: PAID\nPARTIALLY_REFUNDED: PARTIALLY_REFUNDED\nREFUNDED: REFUNDED\nDISPUTED: DISPUTED\nCANCELED: CANCELED",
                        enum_type=OrderStatus,
                        max_length=32,
                    ),
                ),
                ("currency", fields.CharField(max_length=3)),
                ("total_amount", fields.BigIntField(default=0)),
                ("return_url", fields.CharField(null=True, max_length=2000)),
                ("checkout_ip", fields.CharField(null=True, max_length=64)),
                ("checkout_user_agent", fields.CharField(null=True, max_length=512)),
                ("created_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "orders",
                "app": "models",
                "indexes": [
                    Index(fields=["customer_id", "created_at"]),
                    Index(fields=["status", "created_at"]),
                ],
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Payment",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                (
                    "order",
                    fields.ForeignKeyField(
                        "models.Order",
                        source_field="order_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="payments",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("gateway", fields.CharField(max_length=32)),
                ("gateway_reference", fields.CharField(null=True, db_index=True, max_length=255)),
                ("idempotency_key", fields.CharField(unique=True, max_length=128)),
                (
                    "status",
                    fields.CharEnumField(
                        default=PaymentStatus.PENDING,
                        description="PENDING: PENDING\nREQUIRES_ACTION: REQUIRES_ACTION\nPROCESSING: PROCESSING\nAUTHORIZED: AUTHORIZED\nPAID: PAID\nFAILED: FAILED\nCANCELED: CANCELED",
                        enum_type=PaymentStatus,
                        max_length=32,
                    ),
                ),
                (
                    "capture_method",
                    fields.CharEnumField(
                        default=CaptureMethod.AUTOMATIC,
                        description="AUTOMATIC: AUTOMATIC\nMANUAL: MANUAL",
                        enum_type=CaptureMethod,
                        max_length=32,
                    ),
                ),
                ("payment_method", fields.CharField(max_length=255)),
                ("currency", fields.CharField(max_length=3)),
                ("amount", fields.BigIntField(default=0)),
                ("amount_authorized", fields.BigIntField(default=0)),
                ("amount_captured", fields.BigIntField(default=0)),
                ("amount_refunded", fields.BigIntField(default=0)),
                ("decline_code", fields.CharField(null=True, max_length=64)),
                ("failure_message", fields.CharField(null=True, max_length=500)),
                (
                    "next_action",
                    fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads),
                ),
                ("created_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "payments",
                "app": "models",
                "unique_together": (("gateway", "gateway_reference"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PaymentEvent",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "payment",
                    fields.ForeignKeyField(
                        "models.Payment",
                        source_field="payment_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "type",
                    fields.CharEnumField(
                        description="CREATED: CREATED\nREQUIRES_ACTION: REQUIRES_ACTION\nPROCESSING: PROCESSING\nAUTHORIZED: AUTHORIZED\nCAPTURED: CAPTURED\nFAILED: FAILED\nVOIDED: VOIDED\nREFUNDED: REFUNDED\nREFUND_REVERSED: REFUND_REVERSED",
                        enum_type=PaymentEventType,
                        max_length=32,
                    ),
                ),
                ("dedupe_key", fields.CharField(max_length=255)),
                (
                    "source",
                    fields.CharEnumField(
                        description="API: API\nWEBHOOK: WEBHOOK\nRECONCILIATION: RECONCILIATION\nADMIN: ADMIN",
                        enum_type=EventSource,
                        max_length=32,
                    ),
                ),
                (
                    "status_before",
                    fields.CharEnumField(
                        null=True,
                        description="PENDING: PENDING\nREQUIRES_ACTION: REQUIRES_ACTION\nPROCESSING: PROCESSING\nAUTHORIZED: AUTHORIZED\nPAID: PAID\nFAILED: FAILED\nCANCELED: CANCELED",
                        enum_type=PaymentStatus,
                        max_length=32,
                    ),
                ),
                (
                    "status_after",
                    fields.CharEnumField(
                        description="PENDING: PENDING\nREQUIRES_ACTION: REQUIRES_ACTION\nPROCESSING: PROCESSING\nAUTHORIZED: AUTHORIZED\nPAID: PAID\nFAILED: FAILED\nCANCELED: CANCELED",
                        enum_type=PaymentStatus,
                        max_length=32,
                    ),
                ),
                ("amount", fields.BigIntField(default=0)),
                ("currency", fields.CharField(max_length=3)),
                (
                    "data",
                    fields.JSONField(
                        default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "payment_events",
                "app": "models",
                "unique_together": (("payment_id", "dedupe_key"),),
                "pk_attr": "id",
                "table_description": "The ledger: one row per thing that happened to a payment, once per dedupe key.",
            },
            bases=["AppendOnlyModel"],
        ),
        ops.CreateModel(
            name="Product",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ("name", fields.CharField(max_length=200)),
                ("description", fields.TextField(default="", unique=False)),
                ("active", fields.BooleanField(default=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "products", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Price",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                (
                    "product",
                    fields.ForeignKeyField(
                        "models.Product",
                        source_field="product_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="prices",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("lookup_key", fields.CharField(null=True, unique=True, max_length=100)),
                ("currency", fields.CharField(max_length=3)),
                ("unit_amount", fields.BigIntField(default=0)),
                (
                    "type",
                    fields.CharEnumField(
                        description="ONE_TIME: ONE_TIME\nRECURRING: RECURRING",
                        enum_type=PriceType,
                        max_length=32,
                    ),
                ),
                (
                    "recurring_interval",
                    fields.CharEnumField(
                        null=True,
                        description="DAY: DAY\nWEEK: WEEK\nMONTH: MONTH\nYEAR: YEAR",
                        enum_type=RecurringInterval,
                        max_length=32,
                    ),
                ),
                ("recurring_interval_count", fields.IntField(default=1)),
                ("active", fields.BooleanField(default=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "prices", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="LineItem",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                (
                    "order",
                    fields.ForeignKeyField(
                        "models.Order",
                        source_field="order_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="line_items",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "price",
                    fields.ForeignKeyField(
                        "models.Price",
                        source_field="price_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="line_items",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("product_name", fields.CharField(max_length=200)),
                ("quantity", fields.IntField()),
                ("currency", fields.CharField(max_length=3)),
                ("unit_amount", fields.BigIntField(default=0)),
                ("total_amount", fields.BigIntField(default=0)),
            ],
            options={"table": "line_items", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Refund",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                (
                    "payment",
                    fields.ForeignKeyField(
                        "models.Payment",
                        source_field="payment_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="refunds",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("gateway_reference", fields.CharField(null=True, db_index=True, max_length=255)),
                ("idempotency_key", fields.CharField(unique=True, max_length=128)),
                (
                    "status",
                    fields.CharEnumField(
                        default=RefundStatus.PENDING,
                        description="PENDING: PENDING\nSUCCEEDED: SUCCEEDED\nFAILED: FAILED\nCANCELED: CANCELED",
                        enum_type=RefundStatus,
                        max_length=32,
                    ),
                ),
                ("currency", fields.CharField(max_length=3)),
                ("amount", fields.BigIntField(default=0)),
                ("reason", fields.CharField(default="", max_length=500)),
                ("failure_reason", fields.CharField(null=True, max_length=500)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={"table": "refunds", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="WebhookEvent",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("gateway", fields.CharField(max_length=32)),
                ("event_id", fields.CharField(max_length=255)),
                ("event_type", fields.CharField(max_length=128)),
                (
                    "status",
                    fields.CharEnumField(
                        default=WebhookStatus.RECEIVED,
                        description="RECEIVED: RECEIVED\nPROCESSED: PROCESSED\nIGNORED: IGNORED\nFAILED: FAILED\nDEAD: DEAD",
                        enum_type=WebhookStatus,
                        max_length=32,
                    ),
                ),
                ("attempts", fields.IntField(default=0)),
                (
                    "headers",
                    fields.JSONField(
                        default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("body", fields.TextField(unique=False)),
                ("source_ip", fields.CharField(null=True, max_length=64)),
                ("received_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
                ("next_attempt_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("processed_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("last_error", fields.TextField(null=True, unique=False)),
            ],
            options={
                "table": "webhook_events",
                "app": "models",
                "unique_together": (("gateway", "event_id"),),
                "indexes": [Index(fields=["status", "next_attempt_at"])],
                "pk_attr": "id",
                "table_description": "A raw, verified gateway delivery, stored before any processing. The event table is the truth.",
            },
            bases=["Model"],
        ),
    ]
