"""An index on every foreign key column that lacked one.

`payments WHERE order_id = …` ran three times per checkout as a sequential scan, so checkout slowed
as the table grew (issue #12); an order's line items, a payment's refunds and disputes, a
subscription's invoices and the rest were read the same way. A foreign key without an index also
makes each delete of its parent scan the child table. Payments and invoices are read oldest or
newest first, so their index carries `created_at` too.

Plain `CREATE INDEX` on both backends: on a large PostgreSQL table it blocks writes to that table
while it builds, so run this migration at a quiet moment.
"""

from tortoise import migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("models", "0007_payment_events_dedupe_index")]

    initial = False

    operations = [
        ops.AddIndex(model_name="Payment", index=Index(fields=["order_id", "created_at"])),
        ops.AddIndex(model_name="LineItem", index=Index(fields=["order_id"])),
        ops.AddIndex(model_name="LineItem", index=Index(fields=["price_id"])),
        ops.AddIndex(model_name="Price", index=Index(fields=["product_id"])),
        ops.AddIndex(model_name="Refund", index=Index(fields=["payment_id"])),
        ops.AddIndex(model_name="Dispute", index=Index(fields=["payment_id"])),
        ops.AddIndex(model_name="DisputeNote", index=Index(fields=["dispute_id"])),
        ops.AddIndex(model_name="Fulfillment", index=Index(fields=["order_id"])),
        ops.AddIndex(model_name="Invoice", index=Index(fields=["subscription_id", "created_at"])),
        ops.AddIndex(model_name="Invoice", index=Index(fields=["order_id"])),
        ops.AddIndex(model_name="Subscription", index=Index(fields=["price_id"])),
        ops.AddIndex(model_name="Subscription", index=Index(fields=["pending_price_id"])),
        ops.AddIndex(model_name="UsageRecord", index=Index(fields=["price_id"])),
    ]
