"""Personal data sealed at rest: the encrypted columns become TEXT (a sealed value is longer than the
plain one), customers get the blind index of their email (indexed), and the audit trail's append-only
trigger lets exactly one change through: an audit record's source IP re-sealed under a newer key.

On SQLite the columns are left as they are: a column there takes text of any length, and Tortoise's
way of altering one (rebuilding the table) would drop the table's indexes, unique constraints and
triggers.

Rows already stored stay readable as they are (a value without the sealed prefix is read as
plaintext); `payql keys rotate` seals them. This migration needs no key and changes no value.

It applies after whichever migration precedes it (0005 when present), and does not depend on what
that one changes.
"""

from typing import Any

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from db.fields import EncryptedJSONField, EncryptedTextField

SEALED_PREFIX = "payql:v1:"
REFUSAL = "audit_records rows are append-only"

POSTGRES_AUDIT_FUNCTION = f"""
CREATE OR REPLACE FUNCTION payql_refuse_audit_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND (to_jsonb(NEW) - 'source_ip') = (to_jsonb(OLD) - 'source_ip')
       AND OLD.source_ip IS NOT NULL
       AND NEW.source_ip IS NOT NULL
       AND left(NEW.source_ip, {len(SEALED_PREFIX)}) = '{SEALED_PREFIX}' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION '% rows are append-only', TG_TABLE_NAME USING ERRCODE = '23001';
END;
$$ LANGUAGE plpgsql;
"""


class AlterColumnToText(ops.AlterField):
    """AlterField on PostgreSQL; on SQLite only the migration state changes (see the module docstring)."""

    async def database_forward(self, app_label: str, old_state: Any, new_state: Any, state_editor: Any = None) -> None:
        if state_editor is not None and state_editor.DIALECT != "sqlite":
            await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label: str, old_state: Any, new_state: Any, state_editor: Any = None) -> None:
        if state_editor is not None and state_editor.DIALECT != "sqlite":
            await super().database_backward(app_label, old_state, new_state, state_editor)


async def _sqlite_audit_columns(schema_editor: Any) -> list[str]:
    rows = await schema_editor.client.execute_query_dict("PRAGMA table_info(audit_records)")
    return [row["name"] for row in rows if row["name"] != "source_ip"]


async def allow_resealing_audit_ips(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if schema_editor.DIALECT == "postgres":
        await client.execute_script(POSTGRES_AUDIT_FUNCTION)
        await client.execute_script("DROP TRIGGER IF EXISTS audit_records_append_only ON audit_records;")
        await client.execute_script(
            "CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records "
            "FOR EACH ROW EXECUTE FUNCTION payql_refuse_audit_change();"
        )
    elif schema_editor.DIALECT == "sqlite":
        others = ", ".join(await _sqlite_audit_columns(schema_editor))
        await client.execute_script("DROP TRIGGER IF EXISTS audit_records_no_update;")
        await client.execute_script(
            f"CREATE TRIGGER audit_records_no_update BEFORE UPDATE OF {others} ON audit_records "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END;"
        )
        await client.execute_script(
            "CREATE TRIGGER IF NOT EXISTS audit_records_source_ip_sealed BEFORE UPDATE OF source_ip ON audit_records "
            "WHEN OLD.source_ip IS NULL OR NEW.source_ip IS NULL "
            f"OR substr(NEW.source_ip, 1, {len(SEALED_PREFIX)}) != '{SEALED_PREFIX}' "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END;"
        )
        await client.execute_script(
            "CREATE TRIGGER IF NOT EXISTS audit_records_no_delete BEFORE DELETE ON audit_records "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END;"
        )


async def index_customer_emails(apps: Any, schema_editor: Any) -> None:
    await schema_editor.client.execute_script(
        "CREATE INDEX IF NOT EXISTS customers_email_index ON customers (email_index);"
    )


async def drop_customer_email_index(apps: Any, schema_editor: Any) -> None:
    await schema_editor.client.execute_script("DROP INDEX IF EXISTS customers_email_index;")


async def refuse_every_audit_change(apps: Any, schema_editor: Any) -> None:
    client = schema_editor.client
    if schema_editor.DIALECT == "postgres":
        await client.execute_script("DROP TRIGGER IF EXISTS audit_records_append_only ON audit_records;")
        await client.execute_script(
            "CREATE TRIGGER audit_records_append_only BEFORE UPDATE OR DELETE ON audit_records "
            "FOR EACH ROW EXECUTE FUNCTION payql_refuse_change();"
        )
        await client.execute_script("DROP FUNCTION IF EXISTS payql_refuse_audit_change();")
    elif schema_editor.DIALECT == "sqlite":
        for trigger in ("audit_records_no_update", "audit_records_source_ip_sealed"):
            await client.execute_script(f"DROP TRIGGER IF EXISTS {trigger};")
        await client.execute_script(
            f"CREATE TRIGGER audit_records_no_update BEFORE UPDATE ON audit_records "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSAL}'); END;"
        )


class Migration(migrations.Migration):
    dependencies = [("models", "0005_one_live_payment_per_order")]

    initial = False

    operations = [
        AlterColumnToText(
            model_name="AuditRecord", name="source_ip", field=EncryptedTextField(null=True, unique=False)
        ),
        AlterColumnToText(
            model_name="Customer",
            name="email",
            field=EncryptedTextField(null=True, unique=False, blind_index="email_index"),
        ),
        ops.AddField(
            model_name="Customer",
            name="email_index",
            field=fields.CharField(null=True, db_index=True, max_length=64),
        ),
        AlterColumnToText(model_name="Dispute", name="evidence", field=EncryptedJSONField(default=dict)),
        AlterColumnToText(model_name="DisputeNote", name="body", field=EncryptedTextField(unique=False)),
        AlterColumnToText(model_name="Fulfillment", name="tracking_number", field=EncryptedTextField(unique=False)),
        AlterColumnToText(
            model_name="IdempotencyRecord", name="recovery_point", field=EncryptedJSONField(default=dict)
        ),
        AlterColumnToText(model_name="Order", name="checkout_ip", field=EncryptedTextField(null=True, unique=False)),
        AlterColumnToText(
            model_name="Order", name="checkout_user_agent", field=EncryptedTextField(null=True, unique=False)
        ),
        AlterColumnToText(model_name="WebhookEvent", name="body", field=EncryptedTextField(unique=False)),
        ops.RunPython(index_customer_emails, drop_customer_email_index),
        ops.RunPython(allow_resealing_audit_ips, refuse_every_audit_change),
    ]
