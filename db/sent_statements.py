"""Sending a statement written out by hand (`db.row_reads`, `row_inserts`, `row_updates`,
`insert_once`, the outbox's claim and finish, the webhook inbox's): on PostgreSQL straight to the
asyncpg connection, on SQLite through the client's own `execute_query`.

Tortoise's `execute_query` wraps each statement in two layers of exception translation, a debug log
call, a look at the statement's first word, and (for `execute_query_dict`) a copy of every row into a
dict: Python paid on each of a checkout's 30-odd statements, for nothing the caller uses.
Here the connection is taken exactly as tortoise takes it (`acquire_connection()`: the transaction's
connection under its lock, a `one_connection()` block's, or one from the pool), the statement goes to
asyncpg, and its failure is translated as tortoise translates it, so a caller catches the same
`IntegrityError` or `OperationalError` on both dialects. Rows come back as asyncpg records: mappings
by column name, as the dicts are. On PostgreSQL these statements no longer appear in tortoise's
debug log of queries (`tortoise.db_client`), which would print their values, sealed or not.

Never here: building SQL, values spliced into it, or a way around the transaction's lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
from tortoise.backends.asyncpg.client import AsyncpgDBClient
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import BaseORMException, IntegrityError, OperationalError, TransactionManagementError


class _TranslatedAsTortoise:
    """Re-raises an asyncpg error as tortoise's asyncpg client does (its `_translate_exceptions`);
    any other error goes through as it is. A class, not a generator: it wraps every statement."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, _: object) -> None:
        if not isinstance(error, asyncpg.PostgresError):
            return
        translated: BaseORMException
        if isinstance(error, asyncpg.SyntaxOrAccessError | asyncpg.exceptions.DataError):
            translated = OperationalError(error)
        elif isinstance(error, asyncpg.IntegrityConstraintViolationError):
            translated = IntegrityError(error)
        elif isinstance(error, asyncpg.InvalidTransactionStateError):
            translated = TransactionManagementError(error)
        else:
            return
        raise translated from error


_translated_as_tortoise = _TranslatedAsTortoise()

# Whether a client class is asyncpg's, by class: `isinstance` on tortoise's abstract clients goes
# through ABCMeta on every statement.
_ON_ASYNCPG: dict[type[BaseDBAsyncClient], bool] = {}


def _on_asyncpg(client: BaseDBAsyncClient) -> bool:
    kind = type(client)
    known = _ON_ASYNCPG.get(kind)
    if known is None:
        known = _ON_ASYNCPG[kind] = issubclass(kind, AsyncpgDBClient)
    return known


async def fetch(client: BaseDBAsyncClient, statement: str, values: Sequence[Any]) -> Sequence[Mapping[str, Any]]:
    """The rows `statement` returns (a SELECT, or a write with RETURNING)."""
    if not _on_asyncpg(client):
        return await client.execute_query_dict(statement, list(values))
    async with client.acquire_connection() as connection:
        with _translated_as_tortoise:
            rows: list[asyncpg.Record] = await connection.fetch(statement, *values)
    return rows


async def fetch_value(client: BaseDBAsyncClient, statement: str, values: Sequence[Any]) -> Any:
    """The first column of the first row `statement` returns; None when it returns no row."""
    if not _on_asyncpg(client):
        rows = await client.execute_query_dict(statement, list(values))
        return next(iter(rows[0].values())) if rows else None
    async with client.acquire_connection() as connection:
        with _translated_as_tortoise:
            return await connection.fetchval(statement, *values)


async def execute(client: BaseDBAsyncClient, statement: str, values: Sequence[Any]) -> None:
    """Run `statement` (a write without RETURNING) for its effect."""
    if not _on_asyncpg(client):
        await client.execute_query(statement, list(values))
        return
    async with client.acquire_connection() as connection:
        with _translated_as_tortoise:
            await connection.execute(statement, *values)
