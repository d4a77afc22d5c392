import functools
from json import dumps, loads
from typing import Any
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from db.models import PaymentEventType
from domain.statuses import DisputeStatus, InvoiceStatus, SubscriptionStatus


async def restore_sqlite_triggers(apps: Any, schema_editor: Any) -> None:
    """SQLite rebuilds payment_events for the AlterField above, which drops its append-only triggers."""
    if schema_editor.DIALECT != "sqlite":
        return
    for verb in ("UPDATE", "DELETE"):
        await schema_editor.client.execute_script(
            f"CREATE TRIGGER IF NOT EXISTS payment_events_no_{verb.lower()} BEFORE {verb} ON payment_events "
            "BEGIN SELECT RAISE(ABORT, 'payment_events rows are append-only'); END;"
        )


class Migration(migrations.Migration):
    dependencies = [("models", "0003_outbox")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Dispute",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                (
                    "payment",
                    fields.ForeignKeyField(
                        "models.Payment",
                        source_field="payment_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="disputes",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("gateway", fields.CharField(max_length=32)),
                ("gateway_reference", fields.CharField(max_length=255)),
                (
                    "status",
                    fields.CharEnumField(
                        default=DisputeStatus.NEEDS_RESPONSE,
                        description="NEEDS_RESPONSE: NEEDS_RESPONSE\nUNDER_REVIEW: UNDER_REVIEW\nWON: WON\nLOST: LOST",
                        enum_type=DisputeStatus,
                        max_length=32,
                    ),
                ),
                ("reason", fields.CharField(default="", max_length=100)),
                ("currency", fields.CharField(max_length=3)),
                ("amount", fields.BigIntField(default=0)),
                ("evidence_due_by", fields.DatetimeField(null=True, db_index=True, auto_now=False, auto_now_add=False)),
                (
                    "evidence",
                    fields.JSONField(
                        default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("evidence_submitted_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("due_soon_flagged_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("closed_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "disputes",
                "app": "models",
                "unique_together": (("gateway", "gateway_reference"),),
                "pk_attr": "id",
                "table_description": "A chargeback on one payment, mirrored from the gateway, with the evidence we gathered for it.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="DisputeNote",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "dispute",
                    fields.ForeignKeyField(
                        "models.Dispute",
                        source_field="dispute_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="notes",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("author", fields.CharField(max_length=255)),
                ("body", fields.TextField(unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={"table": "dispute_notes", "app": "models", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Fulfillment",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "order",
                    fields.ForeignKeyField(
                        "models.Order",
                        source_field="order_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="fulfillments",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("carrier", fields.CharField(max_length=100)),
                ("tracking_number", fields.CharField(max_length=100)),
                ("shipped_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("recorded_by", fields.CharField(max_length=255)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "fulfillments",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A shipment (or delivery of a service) the merchant recorded for an order: dispute evidence.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Subscription",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "models.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="subscriptions",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "price",
                    fields.ForeignKeyField(
                        "models.Price",
                        source_field="price_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="subscriptions",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "pending_price",
                    fields.ForeignKeyField(
                        "models.Price",
                        source_field="pending_price_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="pending_subscriptions",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("gateway", fields.CharField(max_length=32)),
                ("gateway_reference", fields.CharField(null=True, max_length=255)),
                ("idempotency_key", fields.CharField(unique=True, max_length=128)),
                (
                    "status",
                    fields.CharEnumField(
                        default=SubscriptionStatus.INCOMPLETE,
                        description="INCOMPLETE: INCOMPLETE\nINCOMPLETE_EXPIRED: INCOMPLETE_EXPIRED\nTRIALING: TRIALING\nACTIVE: ACTIVE\nPAST_DUE: PAST_DUE\nPAUSED: PAUSED\nUNPAID: UNPAID\nCANCELED: CANCELED",
                        enum_type=SubscriptionStatus,
                        max_length=32,
                    ),
                ),
                ("currency", fields.CharField(max_length=3)),
                ("unit_amount", fields.BigIntField(default=0)),
                ("payment_method", fields.CharField(max_length=255)),
                ("trial_end", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("current_period_start", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("current_period_end", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("cancel_at_period_end", fields.BooleanField(default=False)),
                ("canceled_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("ended_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("gateway_updated", fields.BigIntField(default=0)),
                ("failed_attempts", fields.IntField(default=0)),
                ("next_retry_at", fields.BigIntField(null=True, db_index=True)),
                ("grace_until", fields.BigIntField(null=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "subscriptions",
                "app": "models",
                "unique_together": (("gateway", "gateway_reference"),),
                "indexes": [Index(fields=["customer_id", "created_at"]), Index(fields=["status", "next_retry_at"])],
                "pk_attr": "id",
                "table_description": "A customer's subscription to one recurring price, mirrored from the gateway's billing engine.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Invoice",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                (
                    "subscription",
                    fields.ForeignKeyField(
                        "models.Subscription",
                        source_field="subscription_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="invoices",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "order",
                    fields.ForeignKeyField(
                        "models.Order",
                        source_field="order_id",
                        null=True,
                        db_constraint=True,
                        to_field="id",
                        related_name="invoices",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("gateway", fields.CharField(max_length=32)),
                ("gateway_reference", fields.CharField(max_length=255)),
                (
                    "status",
                    fields.CharEnumField(
                        default=InvoiceStatus.OPEN,
                        description="DRAFT: DRAFT\nOPEN: OPEN\nPAID: PAID\nUNCOLLECTIBLE: UNCOLLECTIBLE\nVOID: VOID",
                        enum_type=InvoiceStatus,
                        max_length=32,
                    ),
                ),
                ("billing_reason", fields.CharField(default="", max_length=64)),
                ("currency", fields.CharField(max_length=3)),
                ("amount_due", fields.BigIntField(default=0)),
                ("amount_paid", fields.BigIntField(default=0)),
                ("period_start", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("period_end", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("attempt_count", fields.IntField(default=0)),
                ("payment_reference", fields.CharField(null=True, max_length=255)),
                (
                    "next_action",
                    fields.JSONField(null=True, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads),
                ),
                ("decline_code", fields.CharField(null=True, max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "invoices",
                "app": "models",
                "unique_together": (("gateway", "gateway_reference"),),
                "pk_attr": "id",
                "table_description": "One invoice of a subscription. Its payment is an ordinary order and payment (`order`), so the",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="UsageRecord",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "subscription",
                    fields.ForeignKeyField(
                        "models.Subscription",
                        source_field="subscription_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="usage_records",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "price",
                    fields.ForeignKeyField(
                        "models.Price",
                        source_field="price_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="usage_records",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("quantity", fields.BigIntField()),
                ("timestamp", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("idempotency_key", fields.CharField(max_length=128)),
                ("gateway_reference", fields.CharField(null=True, max_length=255)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "usage_records",
                "app": "models",
                "unique_together": (("subscription_id", "idempotency_key"),),
                "pk_attr": "id",
                "table_description": "Metered usage reported for a subscription, once per idempotency key.",
            },
            bases=["Model"],
        ),
        ops.AlterField(
            model_name="PaymentEvent",
            name="type",
            field=fields.CharEnumField(
                description="CREATED: CREATED\nREQUIRES_ACTION: REQUIRES_ACTION\nPROCESSING: PROCESSING\nAUTHORIZED: AUTHORIZED\nCAPTURED: CAPTURED\nFAILED: FAILED\nVOIDED: VOIDED\nREFUNDED: REFUNDED\nREFUND_REVERSED: REFUND_REVERSED\nDISPUTE_WITHDRAWN: DISPUTE_WITHDRAWN\nDISPUTE_REINSTATED: DISPUTE_REINSTATED",
                enum_type=PaymentEventType,
                max_length=32,
            ),
        ),
        ops.AddField(
            model_name="Price",
            name="metered",
            field=fields.BooleanField(null=True),
        ),
        ops.RunPython(restore_sqlite_triggers, ops.RunPython.noop),
    ]
