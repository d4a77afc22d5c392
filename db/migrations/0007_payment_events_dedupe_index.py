"""The ledger's "once per dedupe key" rule, enforced again by SQLite databases.

Migration 0004 changed a payment_events column; SQLite does that by rebuilding the table, and
Tortoise's rebuild kept the columns but dropped the `UNIQUE (payment_id, dedupe_key)` constraint of
0001 (0004 restored the append-only triggers, not the constraint). PostgreSQL alters in place and
kept it. Without it, two writers racing past the application's `exists()` check could record the
same fact twice in an append-only ledger that can never be corrected.

A database that already holds a duplicate is refused with the rows named, never repaired here:
ledger rows are append-only, and which copy stands is a decision for the operator.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

INDEX = "payment_events_once_per_dedupe_key"


class DuplicateLedgerFacts(RuntimeError):
    """The ledger already holds one fact twice; the unique index cannot be built over it."""


async def create_index(apps: Any, schema_editor: Any) -> None:
    if schema_editor.DIALECT != "sqlite":
        return
    _, duplicates = await schema_editor.client.execute_query(
        "SELECT payment_id, dedupe_key, COUNT(*) AS copies FROM payment_events "
        "GROUP BY payment_id, dedupe_key HAVING COUNT(*) > 1 LIMIT 20"
    )
    if duplicates:
        named = ", ".join(f"{row['payment_id']}/{row['dedupe_key']} ({row['copies']} rows)" for row in duplicates)
        raise DuplicateLedgerFacts(
            f"payment_events records these facts more than once: {named}. "
            "Keep a backup, decide which rows stand, and migrate again."
        )
    await schema_editor.client.execute_script(
        f"CREATE UNIQUE INDEX IF NOT EXISTS {INDEX} ON payment_events (payment_id, dedupe_key);"
    )


async def drop_index(apps: Any, schema_editor: Any) -> None:
    if schema_editor.DIALECT == "sqlite":
        await schema_editor.client.execute_script(f"DROP INDEX IF EXISTS {INDEX};")


class Migration(migrations.Migration):
    dependencies = [("models", "0006_encrypt_personal_data")]

    initial = False

    operations = [ops.RunPython(create_index, drop_index)]
