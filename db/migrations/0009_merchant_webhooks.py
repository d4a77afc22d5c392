"""Outgoing webhooks: the merchant's endpoints (signing secrets sealed), the events announced to them,
their deliveries and attempts, and the per-object version counter that outlives pruned events."""

import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from db.fields import EncryptedTextField
from db.merchant_models import DeliveryStatus


class Migration(migrations.Migration):
    dependencies = [("models", "0008_foreign_key_indexes")]

    initial = False

    operations = [
        ops.CreateModel(
            name="MerchantEndpoint",
            fields=[
                ("id", fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True)),
                ("url", fields.CharField(max_length=2048)),
                ("description", fields.CharField(default="", max_length=500)),
                (
                    "event_types",
                    fields.JSONField(
                        default=list, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("enabled", fields.BooleanField(default=True)),
                ("disabled_reason", fields.CharField(null=True, max_length=500)),
                ("secret", EncryptedTextField()),
                ("previous_secret", EncryptedTextField(null=True)),
                ("previous_secret_expires_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("failing_since", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("updated_at", fields.DatetimeField(auto_now=True, auto_now_add=False)),
            ],
            options={
                "table": "merchant_endpoints",
                "app": "models",
                "pk_attr": "id",
                "table_description": "A URL of the merchant systems that receives signed events.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MerchantEvent",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("public_id", fields.CharField(unique=True, max_length=64)),
                ("type", fields.CharField(max_length=64)),
                ("object_type", fields.CharField(max_length=32)),
                ("object_id", fields.CharField(db_index=True, max_length=64)),
                ("object_version", fields.BigIntField()),
                ("dedupe_key", fields.CharField(unique=True, max_length=255)),
                ("body", fields.TextField(unique=False)),
                ("created_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "merchant_events",
                "app": "models",
                "pk_attr": "id",
                "table_description": "One announced change: the envelope sent to every subscribed endpoint, byte for byte.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MerchantDelivery",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "event",
                    fields.ForeignKeyField(
                        "models.MerchantEvent",
                        source_field="event_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="deliveries",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "endpoint",
                    fields.ForeignKeyField(
                        "models.MerchantEndpoint",
                        source_field="endpoint_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="deliveries",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=DeliveryStatus.PENDING,
                        description="PENDING: PENDING\nFAILED: FAILED\nDELIVERED: DELIVERED\nDEAD: DEAD",
                        enum_type=DeliveryStatus,
                        max_length=32,
                    ),
                ),
                ("attempts", fields.IntField(default=0)),
                ("next_attempt_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("last_status_code", fields.IntField(null=True)),
                ("last_error", fields.TextField(null=True, unique=False)),
                ("delivered_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("created_at", fields.DatetimeField(db_index=True, auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "merchant_deliveries",
                "app": "models",
                "unique_together": (("event_id", "endpoint_id"),),
                "indexes": [Index(fields=["status", "next_attempt_at"]), Index(fields=["endpoint_id", "created_at"])],
                "pk_attr": "id",
                "table_description": "One event to one endpoint, retried until delivered or dead.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MerchantDeliveryAttempt",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                (
                    "delivery",
                    fields.ForeignKeyField(
                        "models.MerchantDelivery",
                        source_field="delivery_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="attempt_rows",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("number", fields.IntField()),
                ("status_code", fields.IntField(null=True)),
                ("latency_ms", fields.IntField(null=True)),
                ("response_excerpt", fields.TextField(default="", unique=False)),
                ("error", fields.TextField(null=True, unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
            ],
            options={
                "table": "merchant_delivery_attempts",
                "app": "models",
                "indexes": [Index(fields=["delivery_id"])],
                "pk_attr": "id",
                "table_description": "One HTTP request of a delivery: what the endpoint answered, and how fast.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MerchantObjectVersion",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("object_type", fields.CharField(max_length=32)),
                ("object_id", fields.CharField(max_length=64)),
                ("version", fields.BigIntField(default=0)),
            ],
            options={
                "table": "merchant_object_versions",
                "app": "models",
                "unique_together": (("object_type", "object_id"),),
                "pk_attr": "id",
                "table_description": "The last version announced for an object: it only grows, and outlives pruned events.",
            },
            bases=["Model"],
        ),
    ]
