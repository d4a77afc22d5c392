"""`new_row(Model, **fields)`: the instance `Model(**fields)` builds, for a row the money path is about to
write, built without the constructor's per-call work.

Tortoise's constructor decides, on every call and for every field the caller left out, how to default
it (`inspect.iscoroutinefunction`, `callable`, a type check, a deep copy), and sets every field through
the model's `__setattr__`, which looks for save-time defaults and relation checks each time. A checkout
builds eleven instances (its order, line, payment, ledger events, outbox message, idempotency record and
four audit records) and that work was about a tenth of its server's Python calls. Here each model's way
of defaulting each field is worked out once; a call converts what it is given, as the constructor does
(`to_python_value`), and sets each field directly.

The instance is the constructor's, field for field (`tests/db/test_new_rows.py` compares them on every
model). A model with a save-time (coroutine) default, or a call that names a field the model does not
store, is built by the constructor itself.

Never here: reading or writing the database.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from copy import deepcopy
from dataclasses import dataclass
from functools import cache
from typing import Any, TypeVar

from tortoise.exceptions import OperationalError
from tortoise.models import Model

M = TypeVar("M", bound=Model)

# How a field the caller left out gets its value: the same value every time (an immutable default, None,
# the database's default), or one made per row (a callable default, a copy of a mutable one).
_Default = tuple[Any] | Callable[[], Any]


@dataclass(frozen=True, slots=True)
class _Plan:
    # The fields a call may give, each with its conversion (`to_python_value`) and whether None is refused.
    given: dict[str, tuple[Callable[[Any], Any], bool]]
    # The relations a call may give as an instance, each with its key column (which it sets).
    relations: dict[str, str]
    # How the constructor defaults each field a call does not give.
    defaults: dict[str, _Default]
    # The model must be built by its constructor: it has a save-time default.
    constructor_only: bool
    # The primary key's name when the database generates it (a given one is marked, as the constructor does).
    generated_pk: str | None


def _default(field: Any) -> _Default:
    default = field.default
    if callable(default):
        return default  # type: ignore[no-any-return]
    if default is not None:
        if isinstance(default, int | float | str | bool | bytes):
            return (default,)
        return lambda: deepcopy(default)
    if field.has_db_default():
        # A marker object per row, as the constructor makes one.
        return field.get_db_default_value  # type: ignore[no-any-return]
    return (None,)


@cache
def _plan(model: type[Model]) -> _Plan:
    meta = model._meta
    given: dict[str, tuple[Callable[[Any], Any], bool]] = {
        name: (meta.fields_map[name].to_python_value, not meta.fields_map[name].null)
        for name in meta.fields_db_projection
    }
    relations = {name: str(meta.fields_map[name].source_field) for name in meta.fk_fields | meta.o2o_fields}
    defaults: dict[str, _Default] = {}
    constructor_only = False
    # As the constructor: relations (fetch fields) are never defaulted; their key columns are fields.
    for name in sorted(meta.fields - meta.fetch_fields):
        field = meta.fields_map[name]
        if inspect.iscoroutinefunction(field.default):
            constructor_only = True
        defaults[name] = _default(field)
    pk = meta.fields_map.get(meta.pk_attr)  # none on an abstract model
    generated_pk = meta.pk_attr if pk is not None and pk.generated else None
    return _Plan(given, relations, defaults, constructor_only, generated_pk)


def new_row(model: type[M], **fields: Any) -> M:
    """`model(**fields)`, built as its constructor builds it (see the module's docstring)."""
    plan = _plan(model)
    if plan.constructor_only:
        return model(**fields)
    row = model.__new__(model)
    put = object.__setattr__
    put(row, "_partial", False)
    put(row, "_saved_in_db", False)
    put(row, "_custom_generated_pk", False)
    put(row, "_await_when_save", {})
    set_by_relations: set[str] = set()
    for name, value in fields.items():
        conversion = plan.given.get(name)
        if conversion is not None:
            convert, refuses_none = conversion
            if value is None and refuses_none:
                raise ValueError(f"{name} is non nullable field, but null was passed")
            put(row, name, convert(value))
        elif name in plan.relations:
            if value and not value._saved_in_db:
                raise OperationalError(f"You should first call .save() on {value} before referring to it")
            setattr(row, name, value)  # the model's own checks, and the relation's key column
            set_by_relations.add(plan.relations[name])
        else:
            return model(**fields)  # a name the constructor refuses or ignores: let it
    if plan.generated_pk is not None and plan.generated_pk in fields:
        put(row, "_custom_generated_pk", True)
    for name, default in plan.defaults.items():
        if name not in fields and name not in set_by_relations:
            put(row, name, default[0] if isinstance(default, tuple) else default())
    return row
