"""Payment methods as TEXT: the `paymentMethod` a browser SDK hands over can be client-side encrypted card data
(several encrypted fields as JSON, a few kilobytes), longer than the 255 characters a token needed.

On SQLite the columns are left as they are (a column there takes text of any length, and rebuilding the table
would drop its indexes and triggers), as in 0006. No value changes.
"""

from typing import Any

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class AlterColumnToText(ops.AlterField):
    """AlterField on PostgreSQL; on SQLite only the migration state changes (see the module docstring)."""

    async def database_forward(self, app_label: str, old_state: Any, new_state: Any, state_editor: Any = None) -> None:
        if state_editor is not None and state_editor.DIALECT != "sqlite":
            await super().database_forward(app_label, old_state, new_state, state_editor)

    async def database_backward(self, app_label: str, old_state: Any, new_state: Any, state_editor: Any = None) -> None:
        if state_editor is not None and state_editor.DIALECT != "sqlite":
            await super().database_backward(app_label, old_state, new_state, state_editor)


class Migration(migrations.Migration):
    dependencies = [("models", "0009_merchant_webhooks")]

    initial = False

    operations = [
        AlterColumnToText(model_name="Payment", name="payment_method", field=fields.TextField()),
        AlterColumnToText(model_name="Subscription", name="payment_method", field=fields.TextField()),
    ]
