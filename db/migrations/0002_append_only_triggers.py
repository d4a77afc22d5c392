"""Refuse UPDATE and DELETE on the ledger and audit tables inside the database itself.

PostgreSQL gets a trigger raising restrict_violation (23001), SQLite BEFORE UPDATE/DELETE triggers
that RAISE(ABORT): both surface as an IntegrityError.
"""

from typing import Any

from tortoise import migrations
from tortoise.migrations import operations as ops

APPEND_ONLY_TABLES = ("payment_events", "audit_records")

POSTGRES_FUNCTION = """
CREATE OR REPLACE FUNCTION payql_refuse_change() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% rows are append-only', TG_TABLE_NAME USING ERRCODE = '23001';
END;
$$ LANGUAGE plpgsql;
"""


async def create_triggers(apps: Any, schema_editor: Any) -> None:
    if schema_editor.DIALECT == "postgres":
        await schema_editor.client.execute_script(POSTGRES_FUNCTION)
        for table in APPEND_ONLY_TABLES:
            await schema_editor.client.execute_script(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION payql_refuse_change();"
            )
    elif schema_editor.DIALECT == "sqlite":
        for table in APPEND_ONLY_TABLES:
            for verb in ("UPDATE", "DELETE"):
                await schema_editor.client.execute_script(
                    f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                    f"BEGIN SELECT RAISE(ABORT, '{table} rows are append-only'); END;"
                )


async def drop_triggers(apps: Any, schema_editor: Any) -> None:
    if schema_editor.DIALECT == "postgres":
        for table in APPEND_ONLY_TABLES:
            await schema_editor.client.execute_script(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};")
        await schema_editor.client.execute_script("DROP FUNCTION IF EXISTS payql_refuse_change();")
    elif schema_editor.DIALECT == "sqlite":
        for table in APPEND_ONLY_TABLES:
            for verb in ("update", "delete"):
                await schema_editor.client.execute_script(f"DROP TRIGGER IF EXISTS {table}_no_{verb};")


class Migration(migrations.Migration):
    dependencies = [("models", "0001_initial")]

    operations = [ops.RunPython(create_triggers, drop_triggers)]
