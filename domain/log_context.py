"""The identifiers in scope for log lines (principal, order, payment, refund, webhook event, job),
held in a context variable so every line written while handling one request or job carries them.

Pure standard library, so the use cases can bind what they work on without knowing how lines are
written (`payql.logging_setup` reads them). Only identifiers go here: never a personal value, a
token or anything a client typed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token

# (name, value) pairs: an immutable default, and each binding makes a new tuple.
_fields: ContextVar[tuple[tuple[str, str], ...]] = ContextVar("payql_log_fields", default=())


def bound_fields() -> dict[str, str]:
    return dict(_fields.get())


def _with(fields: Mapping[str, object | None]) -> tuple[tuple[str, str], ...]:
    merged = dict(_fields.get()) | {name: str(value) for name, value in fields.items() if value is not None}
    return tuple(merged.items())


def bind_log_fields(**fields: object | None) -> None:
    """Add identifiers to every later log line of this request or job (None values are left out)."""
    _fields.set(_with(fields))


@contextmanager
def log_scope(**fields: object | None) -> Iterator[None]:
    """Identifiers for the log lines of one block (a job, one webhook event), removed after it."""
    token = _fields.set(_with(fields))
    try:
        yield
    finally:
        _fields.reset(token)


def fresh_scope() -> Token[tuple[tuple[str, str], ...]]:
    """Start a request or connection with no identifiers bound; `end_scope` puts the outer ones back."""
    return _fields.set(())


def end_scope(token: Token[tuple[tuple[str, str], ...]]) -> None:
    _fields.reset(token)
