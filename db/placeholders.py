"""SQL written out by hand with PostgreSQL's `$1, $2…` parameters, made right for the connection's dialect.

SQLite numbers its parameters `?1, ?2…`: the same statement with each `$` replaced. Every module that
writes its SQL out (the webhook and outbox claims, `db.row_reads`, `db.row_updates`) goes through
here, so the rule lives in one place. Never here: a statement with a `$` that is not a parameter (a
string literal holding one would be changed too), or values spliced into SQL.
"""

from __future__ import annotations

from tortoise.backends.base.client import BaseDBAsyncClient


def in_dialect(statement: str, dialect: str) -> str:
    """`statement` (written with `$n` parameters) as the dialect `dialect` numbers its parameters."""
    return statement if dialect == "postgres" else statement.replace("$", "?")


def for_connection(statement: str, connection: BaseDBAsyncClient) -> str:
    """`statement` as `connection`'s dialect numbers its parameters."""
    return in_dialect(statement, connection.capabilities.dialect)
