"""Whole-row reads on the money path, with their SQL written out once per dialect and WHERE clause.

A checkout locks its order and payment and reads the order's payments in every transaction that
moves money; built by the ORM's query builder each time, those statements cost about as much
Python as running them. Here each is built once (the columns from the model, the WHERE clause
as written by the caller with `$1, $2…` parameters) and the rows become model instances as the ORM
would make them (`Model._init_from_db`: saved, not partial).

Never here: values spliced into SQL (only parameters), writes, or a WHERE clause built from input.
"""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.models import Model

from db.placeholders import in_dialect

M = TypeVar("M", bound=Model)

_STATEMENTS: dict[tuple[str, str, str, bool], str] = {}


def _statement(model: type[Model], where: str, *, for_update: bool, dialect: str) -> str:
    key = (dialect, model._meta.db_table, where, for_update)
    statement = _STATEMENTS.get(key)
    if statement is None:
        columns = ", ".join(f'"{column}"' for column in model._meta.fields_db_projection.values())
        statement = f'SELECT {columns} FROM "{model._meta.db_table}" WHERE {where}'  # noqa: S608 - constants only
        # SQLite has no row locks: its writers run one at a time.
        if dialect == "postgres" and for_update:
            statement += " FOR UPDATE"
        statement = _STATEMENTS[key] = in_dialect(statement, dialect)
    return statement


async def read_rows(
    model: type[M], where: str, values: list[Any], connection: BaseDBAsyncClient, *, for_update: bool = False
) -> list[M]:
    """The `model` rows matching `where` (a constant clause with `$n` parameters, and an ORDER BY if
    wanted), each locked with `for_update` on PostgreSQL."""
    statement = _statement(model, where, for_update=for_update, dialect=connection.capabilities.dialect)
    # As the ORM writes a UUID: text, which both dialects take.
    rows = await connection.execute_query_dict(statement, [str(v) if isinstance(v, UUID) else v for v in values])
    return [model._init_from_db(**row) for row in rows]
