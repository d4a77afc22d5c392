"""`insert_once`: insert a row unless a row with one of its unique keys exists, in one statement.

`INSERT … ON CONFLICT DO NOTHING RETURNING <pk>` (PostgreSQL and SQLite alike) instead of an
existence check, a savepoint and an INSERT that may fail: nothing is refused, so nothing aborts the
caller's transaction and no savepoint is needed. A concurrent insert of the same key waits for the
first one's transaction and then does nothing.

`insert_each_once` does the same for several rows of one model, given as their fields' values, in one
statement (`INSERT … VALUES (…), (…) ON CONFLICT DO NOTHING RETURNING <pk>, <key>`), and tells which
of them went in by their key.

Never here: updates to a row that exists, or reading it back (callers decide what a duplicate means).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from db import sent_statements
from db.row_inserts import inserted_fields, row_values, values_statement

M = TypeVar("M", bound=Model)

# Per (dialect, table, rows, unique key): `db.row_inserts`' INSERT with ON CONFLICT and RETURNING, built once.
_STATEMENTS: dict[tuple[str, str, int, tuple[str, ...]], str] = {}


def _statement(model: type[Model], fields: Sequence[str], rows: int, unique: tuple[str, ...], dialect: str) -> str:
    """`INSERT … VALUES … ON CONFLICT DO NOTHING RETURNING <pk>, <unique's columns>`."""
    key = (dialect, model._meta.db_table, rows, unique)
    statement = _STATEMENTS.get(key)
    if statement is None:
        meta = model._meta
        returned = ", ".join(f'"{meta.fields_db_projection[name]}"' for name in (meta.pk_attr, *unique))
        statement = _STATEMENTS[key] = (
            f"{values_statement(model, fields, rows, dialect)} ON CONFLICT DO NOTHING RETURNING {returned}"
        )
    return statement


async def insert_once(instance: M, connection: BaseDBAsyncClient) -> bool:
    """Insert `instance` on `connection` (its primary key set from the row); False, and nothing
    written, when a row holds one of its unique keys already."""
    model = type(instance)
    fields = inserted_fields(model)
    fields_map = model._meta.fields_map
    values = [fields_map[name].to_db_value(getattr(instance, name), instance) for name in fields]
    statement = _statement(model, fields, 1, (), connection.capabilities.dialect)
    pk = await sent_statements.fetch_value(connection, statement, values)
    if pk is None:
        return False
    instance.pk = pk
    instance._saved_in_db = True
    return True


async def insert_each_once(
    model: type[Model], rows: Sequence[Mapping[str, Any]], connection: BaseDBAsyncClient, unique: tuple[str, ...]
) -> list[int | None]:
    """Insert each of `rows` (each a row of `model` by its given fields, `db.row_inserts.row_values`)
    unless a row holds its value of the unique key `unique` (field names), in one statement on
    `connection`; each one's new primary key, or None for a row not inserted. Of two rows with one
    key, the first is inserted and the second is not, as if they had come one after the other."""
    if not rows:
        return []
    meta = model._meta
    fields = inserted_fields(model)
    key_at = [fields.index(name) for name in unique]
    keys: list[tuple[object, ...]] = []
    firsts: set[tuple[object, ...]] = set()
    values: list[object] = []
    for given in rows:
        row = row_values(model, given)
        key = tuple(row[at] for at in key_at)
        keys.append(key)
        if key not in firsts:
            firsts.add(key)
            values.extend(row)
    statement = _statement(model, fields, len(firsts), unique, connection.capabilities.dialect)
    pk_column = meta.db_pk_column
    key_columns = [meta.fields_db_projection[name] for name in unique]
    inserted = {
        tuple(returned[column] for column in key_columns): returned[pk_column]
        for returned in await sent_statements.fetch(connection, statement, values)
    }
    # The first row of a key takes its new primary key; a later row of it was not inserted.
    return [inserted.pop(key, None) for key in keys]
