"""Whole-row reads on the money path, with their SQL written out once per dialect and WHERE clause.

A checkout locks its order and payment and reads the order's payments in every transaction that
moves money; built by the ORM's query builder each time, those statements cost about as much
Python as running them. Here each is built once (the columns from the model, the WHERE clause
as written by the caller with `$1, $2…` parameters) and the rows become model instances as the ORM
would make them (`Model._init_from_db`: saved, not partial).

`read_rows_with` reads each row with the row its foreign key points at in the same statement (a
checkout's prices with their products, a receipt's order with its customer), as `select_related`
would, for about a fifth of the ORM's Python.

Never here: values spliced into SQL (only parameters), writes, or a WHERE clause built from input.
"""

from __future__ import annotations

from typing import Any, TypeVar
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.fields.relational import ForeignKeyFieldInstance
from tortoise.models import Model

from db import sent_statements
from db.placeholders import in_dialect

M = TypeVar("M", bound=Model)

_STATEMENTS: dict[tuple[str, str, str, str, bool], str] = {}


def _columns(model: type[Model]) -> list[str]:
    return list(model._meta.fields_db_projection.values())


def _relation(model: type[Model], name: str) -> tuple[type[Model], str]:
    """The model a foreign key `name` of `model` points at, and the column that holds it."""
    field = model._meta.fields_map[name]
    if not isinstance(field, ForeignKeyFieldInstance) or field.source_field is None:
        raise TypeError(f"{model.__name__}.{name} is not a foreign key")
    return field.related_model, model._meta.fields_db_projection[field.source_field]


def _select(model: type[Model], relation: str) -> str:
    table = model._meta.db_table
    columns = [f'"{table}"."{column}"' for column in _columns(model)]
    if not relation:
        return f'SELECT {", ".join(columns)} FROM "{table}"'  # noqa: S608 - model names only
    parent, foreign_key = _relation(model, relation)
    parent_table = parent._meta.db_table
    # The parent's columns are named apart: both tables have an id, a name, an `active`…
    columns += [f'"{parent_table}"."{column}" AS "{relation}.{column}"' for column in _columns(parent)]
    joined = f'"{parent_table}" ON "{parent_table}"."{parent._meta.db_pk_column}" = "{table}"."{foreign_key}"'
    return f'SELECT {", ".join(columns)} FROM "{table}" JOIN {joined}'  # noqa: S608 - model names only


def _statement(model: type[Model], where: str, *, for_update: bool, dialect: str, relation: str = "") -> str:
    key = (dialect, model._meta.db_table, relation, where, for_update)
    statement = _STATEMENTS.get(key)
    if statement is None:
        statement = f"{_select(model, relation)} WHERE {where}"
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
    rows = await sent_statements.fetch(connection, statement, _parameters(values))
    return [model._init_from_db(**row) for row in rows]


async def read_rows_with(
    model: type[M], relation: str, where: str, values: list[Any], connection: BaseDBAsyncClient
) -> list[M]:
    """The `model` rows matching `where`, each with the row its foreign key `relation` points at,
    there to be awaited as after `select_related(relation)`. Both tables' columns are in scope:
    `where` names each as `"<table>"."<column>"`."""
    statement = _statement(model, where, for_update=False, dialect=connection.capabilities.dialect, relation=relation)
    parent, _ = _relation(model, relation)
    own, theirs = _columns(model), [(f"{relation}.{column}", column) for column in _columns(parent)]
    found = []
    for row in await sent_statements.fetch(connection, statement, _parameters(values)):
        instance = model._init_from_db(**{column: row[column] for column in own})
        # Where the ORM keeps a related row it read (`_fk_getter` answers from it, without a query).
        object.__setattr__(instance, f"_{relation}", parent._init_from_db(**{c: row[a] for a, c in theirs}))
        found.append(instance)
    return found


def _parameters(values: list[Any]) -> list[Any]:
    # As the ORM writes a UUID: text, which both dialects take.
    return [str(v) if isinstance(v, UUID) else v for v in values]
