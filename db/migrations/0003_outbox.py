import functools
from json import dumps, loads

from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from db.models import OutboxStatus


class Migration(migrations.Migration):
    dependencies = [("models", "0002_append_only_triggers")]

    initial = False

    operations = [
        ops.CreateModel(
            name="OutboxMessage",
            fields=[
                ("id", fields.BigIntField(generated=True, primary_key=True, unique=True, db_index=True)),
                ("kind", fields.CharField(max_length=64)),
                ("dedupe_key", fields.CharField(unique=True, max_length=255)),
                (
                    "payload",
                    fields.JSONField(
                        default=dict, encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        default=OutboxStatus.PENDING,
                        description="PENDING: PENDING\nSENT: SENT\nFAILED: FAILED\nDEAD: DEAD",
                        enum_type=OutboxStatus,
                        max_length=32,
                    ),
                ),
                ("attempts", fields.IntField(default=0)),
                ("next_attempt_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("last_error", fields.TextField(null=True, unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=True)),
                ("sent_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "outbox_messages",
                "app": "models",
                "indexes": [Index(fields=["status", "next_attempt_at"])],
                "pk_attr": "id",
                "table_description": "A side effect (an email, a notification) written in the same transaction as the change that",
            },
            bases=["Model"],
        ),
    ]
