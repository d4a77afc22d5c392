"""At most one payment per order in flight or succeeded, refused by the database itself.

`create_payment` checks this under the order's lock; the partial unique index below holds even
when that check is bypassed or raced, on PostgreSQL and SQLite alike (both have partial indexes).

One exception is deliberate: a payment we recorded as FAILED that the gateway later reports as
taken (`FAILED → AUTHORIZED | PAID`, see `db/transitions.py`) must be recorded whatever else the
order holds, since losing track of captured money is worse than a double charge staff can refund.
A failed payment always keeps its decline code or failure message, so the index leaves out rows
that carry one. Rows that failed before this migration without either get the generic message.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

INDEX = "payments_one_live_per_order"
LIVE_STATUSES = ("PENDING", "REQUIRES_ACTION", "PROCESSING", "AUTHORIZED", "PAID")


async def create_index(apps: Any, schema_editor: Any) -> None:
    statuses = ", ".join(f"'{status}'" for status in LIVE_STATUSES)
    await schema_editor.client.execute_script(
        "UPDATE payments SET failure_message = 'The payment failed.' "
        "WHERE status = 'FAILED' AND failure_message IS NULL AND decline_code IS NULL;"
    )
    await schema_editor.client.execute_script(
        f"CREATE UNIQUE INDEX IF NOT EXISTS {INDEX} ON payments (order_id) "
        f"WHERE status IN ({statuses}) AND decline_code IS NULL AND failure_message IS NULL;"
    )


async def drop_index(apps: Any, schema_editor: Any) -> None:
    await schema_editor.client.execute_script(f"DROP INDEX IF EXISTS {INDEX};")


class Migration(migrations.Migration):
    dependencies = [("models", "0004_disputes_subscriptions")]

    initial = False

    operations = [ops.RunPython(create_index, drop_index)]
