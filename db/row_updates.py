"""Updates of named columns of one row by its primary key, with the SQL written out once per dialect.

The money path updates the same few columns on every request (an idempotency record's recovery
point, then its response); built by the ORM's update query each time, the statement cost more
Python than running it. Here it is built once per (dialect, table, columns), and each value goes
through its field's own conversion, as the ORM would store it (JSON, enums, sealed text).

`save_columns` writes named fields of a model instance the same way, as `save(update_fields=…)`
would (an `auto_now` timestamp stamped on the instance and in the row), without the ORM's save
machinery: a payment fact saves its payment and its order on every money movement.

Never here: a WHERE clause other than the primary key, column names from input, or reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from db import sent_statements
from db.placeholders import in_dialect

_STATEMENTS: dict[tuple[str, str, tuple[str, ...]], str] = {}


def _statement(model: type[Model], fields: tuple[str, ...], dialect: str) -> str:
    key = (dialect, model._meta.db_table, fields)
    statement = _STATEMENTS.get(key)
    if statement is None:
        meta = model._meta
        assignments = ", ".join(f'"{meta.fields_db_projection[name]}" = ${i}' for i, name in enumerate(fields, 1))
        statement = f'UPDATE "{meta.db_table}" SET {assignments} WHERE "{meta.db_pk_column}" = ${len(fields) + 1}'  # noqa: S608 - model names only
        _STATEMENTS[key] = in_dialect(statement, dialect)
    return _STATEMENTS[key]


async def save_columns(instance: Model, fields: Sequence[str], connection: BaseDBAsyncClient) -> None:
    """Write the named fields of `instance` to its row, converted with the instance as the ORM's
    save converts them (so an `auto_now` field named here is stamped now, on both)."""
    model = type(instance)
    names = tuple(fields)
    fields_map = model._meta.fields_map
    parameters = [fields_map[name].to_db_value(getattr(instance, name), instance) for name in names]
    parameters.append(model._meta.pk.to_db_value(instance.pk, instance))
    await sent_statements.execute(connection, _statement(model, names, connection.capabilities.dialect), parameters)


async def update_columns(model: type[Model], pk: Any, values: dict[str, Any], connection: BaseDBAsyncClient) -> None:
    """Set the named fields of the `model` row whose primary key is `pk` (no row: nothing changes)."""
    fields = tuple(values)
    fields_map = model._meta.fields_map
    parameters = [fields_map[name].to_db_value(values[name], model) for name in fields]
    parameters.append(model._meta.pk.to_db_value(pk, model))
    await sent_statements.execute(connection, _statement(model, fields, connection.capabilities.dialect), parameters)
