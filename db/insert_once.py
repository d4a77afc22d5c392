"""`insert_once`: insert a row unless a row with one of its unique keys exists, in one statement.

`INSERT … ON CONFLICT DO NOTHING RETURNING <pk>` (PostgreSQL and SQLite alike) instead of an
existence check, a savepoint and an INSERT that may fail: nothing is refused, so nothing aborts the
caller's transaction and no savepoint is needed. A concurrent insert of the same key waits for the
first one's transaction and then does nothing.

Never here: updates to a row that exists, or reading it back (callers decide what a duplicate means).
"""

from __future__ import annotations

from typing import TypeVar

from pypika_tortoise.queries import Table
from pypika_tortoise.terms import Parameter
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from db import sent_statements
from db.row_inserts import inserted_fields

M = TypeVar("M", bound=Model)

# The statement and its columns per (dialect, table): built once, as tortoise caches its own INSERT.
_STATEMENTS: dict[tuple[str, str], tuple[str, list[str]]] = {}


def _statement(model: type[Model], connection: BaseDBAsyncClient) -> tuple[str, list[str]]:
    dialect = connection.capabilities.dialect
    key = (dialect, model._meta.db_table)
    if key not in _STATEMENTS:
        meta = model._meta
        fields = inserted_fields(model)
        columns = [meta.fields_db_projection[name] for name in fields]
        parameters = [Parameter(f"${i + 1}" if dialect == "postgres" else "?") for i in range(len(columns))]
        query = (
            connection.query_class.into(Table(meta.db_table))
            .columns(*columns)
            .insert(*parameters)
            .on_conflict()
            .do_nothing()
            # Both dialects' builders have RETURNING; the base builder's type does not say so.
            .returning(meta.db_pk_column)  # type: ignore[operator]
        )
        _STATEMENTS[key] = (str(query), fields)
    return _STATEMENTS[key]


async def insert_once(instance: M, connection: BaseDBAsyncClient) -> bool:
    """Insert `instance` on `connection` (its primary key set from the row); False, and nothing
    written, when a row holds one of its unique keys already."""
    model = type(instance)
    query, fields = _statement(model, connection)
    fields_map = model._meta.fields_map
    values = [fields_map[name].to_db_value(getattr(instance, name), instance) for name in fields]
    pk = await sent_statements.fetch_value(connection, query, values)
    if pk is None:
        return False
    instance.pk = pk
    instance._saved_in_db = True
    return True
