"""Inserts of several rows of one model in one statement, with its SQL written out once per dialect.

A unit of work's audit records and an order's line items are written as one `INSERT … VALUES (…),
(…)`. The ORM's bulk insert sends them through asyncpg's executemany, a bind and an execute per
row, built through its query machinery: more Python than the rows themselves. Each value goes
through its field's own conversion with its instance, as the ORM would store it (sealed text, JSON,
enums, a timestamp stamped by `auto_now_add`).

`row_values` gives one row's values from its given fields alone, as the ORM would store an instance
built from them, without building one: on the webhook ingestion's path a model instance (its
constructor, a validated `__setattr__` per field) cost more than the conversions it carries.

Never here: ON CONFLICT (`db.insert_once` adds it to these statements), updates, reading rows
back, values spliced into SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache, partial
from typing import Any

from tortoise import timezone
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.fields import DatetimeField
from tortoise.models import Model

from db import sent_statements
from db.placeholders import in_dialect

# Both PostgreSQL and SQLite take tens of thousands of parameters in a statement; a unit of work with
# more rows than this writes them in several statements.
ROWS_PER_STATEMENT = 500

_STATEMENTS: dict[tuple[str, str, int], str] = {}


@cache
def inserted_fields(model: type[Model]) -> tuple[str, ...]:
    """As the ORM inserts: every field but those the database generates (a serial key). Once per
    model: a model's fields do not change while the process runs."""
    meta = model._meta
    generated = set(meta.generated_db_fields)
    return tuple(name for name, column in meta.fields_db_projection.items() if column not in generated)


# One field's database value for a row that does not give it: made per row, or the same for every row.
_Default = Callable[[], Any] | tuple[Any]


def _default(model: type[Model], name: str) -> _Default:
    field = model._meta.fields_map[name]
    if isinstance(field, DatetimeField) and (field.auto_now or field.auto_now_add):
        return lambda: field.to_db_value(timezone.localtime(), model)
    if callable(field.default):
        make = field.default
        return lambda: field.to_db_value(make(), model)
    if field.default is None and not field.null:
        return partial(_missing, f"{model.__name__}.{name}")
    return (field.to_db_value(field.default, model),)


def _missing(field: str) -> Any:
    raise TypeError(f"{field} has no default: a row must give it")


@cache
def _defaults(model: type[Model]) -> dict[str, _Default]:
    return {name: _default(model, name) for name in inserted_fields(model)}


def row_values(model: type[Model], given: Mapping[str, Any]) -> list[Any]:
    """One row's database values, in `inserted_fields(model)`'s order, as the ORM would store an
    instance of `model` built with `given`: each given value through its field's conversion (its
    validation included), each other field's default (converted once, or per row when it is made per
    row: a callable default, an `auto_now` or `auto_now_add` time). A given value wins over any
    default: unlike the ORM's save, a given `auto_now` time is kept."""
    defaults = _defaults(model)
    if not given.keys() <= defaults.keys():
        raise TypeError(f"{model.__name__} stores no field named {sorted(given.keys() - defaults.keys())}")
    fields_map = model._meta.fields_map
    values: list[Any] = []
    for name, default in defaults.items():
        if name in given:
            values.append(fields_map[name].to_db_value(given[name], model))
        else:
            values.append(default[0] if isinstance(default, tuple) else default())
    return values


def values_statement(model: type[Model], fields: Sequence[str], rows: int, dialect: str) -> str:
    """`INSERT INTO <table> (<fields' columns>) VALUES (…), (…)` for `rows` rows, its parameters numbered
    row after row; written once per (dialect, table, rows)."""
    key = (dialect, model._meta.db_table, rows)
    statement = _STATEMENTS.get(key)
    if statement is None:
        meta = model._meta
        columns = ", ".join(f'"{meta.fields_db_projection[name]}"' for name in fields)
        width = len(fields)
        values = ", ".join(
            "(" + ", ".join(f"${row * width + n}" for n in range(1, width + 1)) + ")" for row in range(rows)
        )
        statement = f'INSERT INTO "{meta.db_table}" ({columns}) VALUES {values}'  # noqa: S608 - model names only
        statement = _STATEMENTS[key] = in_dialect(statement, dialect)
    return statement


async def insert_rows(instances: Sequence[Model], connection: BaseDBAsyncClient) -> None:
    """Insert `instances` (all of one model, their keys set or generated by the database) on
    `connection`, in as few statements as `ROWS_PER_STATEMENT` allows."""
    if not instances:
        return
    model = type(instances[0])
    if any(type(instance) is not model for instance in instances):
        raise TypeError("insert_rows takes rows of one model")
    fields = inserted_fields(model)
    fields_map = model._meta.fields_map
    dialect = connection.capabilities.dialect
    for start in range(0, len(instances), ROWS_PER_STATEMENT):
        chunk = instances[start : start + ROWS_PER_STATEMENT]
        values = [fields_map[name].to_db_value(getattr(row, name), row) for row in chunk for name in fields]
        await sent_statements.execute(connection, values_statement(model, fields, len(chunk), dialect), values)
    for instance in instances:
        instance._saved_in_db = True
