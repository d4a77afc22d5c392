"""`create_or_read`: the row with a unique key, created on first use, safe against races and
cancellation (tortoise's `get_or_create` opens its own transaction, which a cancellation can leave
holding its lock or connection).

Never here: updates to a row that exists.
"""

from __future__ import annotations

from typing import Any, TypeVar

from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.models import Model

from db.row_reads import read_rows
from db.transaction import transaction

M = TypeVar("M", bound=Model)


async def create_or_read(model: type[M], key: dict[str, Any], defaults: dict[str, Any]) -> M:
    """The `model` row whose unique `key` matches, else a new one with `defaults` too; a concurrent
    request that created it first wins, and its row is read."""
    found = await _read(model, key)
    if found is not None:
        return found
    try:
        # A transaction of its own (a savepoint inside one): on PostgreSQL a refused INSERT must not
        # abort the caller's transaction.
        async with transaction():
            return await model.create(**key, **defaults)
    except IntegrityError:
        winner = await _read(model, key)
        if winner is None:
            raise  # refused for another reason than the key
        return winner


async def _read(model: type[M], key: dict[str, Any]) -> M | None:
    """The row with the unique `key` (field names from our code, never from input): the common path of
    every checkout, its SQL written out once (`db.row_reads`)."""
    meta = model._meta
    where = " AND ".join(f'"{meta.fields_db_projection[name]}" = ${i}' for i, name in enumerate(key, 1))
    values = [meta.fields_map[name].to_db_value(value, model) for name, value in key.items()]
    rows = await read_rows(model, where, values, connections.get("default"))
    return rows[0] if rows else None
