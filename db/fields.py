"""Column helpers shared by the models, so money, statuses and personal data are declared the same way
everywhere.

The encrypted fields seal a value on its way to the database and open it on the way back (see
`db.encryption`), so the rest of the code reads and writes plain values. A filter on an encrypted
column compares against a freshly sealed value and never matches: look such values up by their blind
index column instead. Never store a personal value in a plain column.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any

from tortoise import fields
from tortoise.models import Model

from db.encryption import installed_data_keys, is_sealed


def money_field(**kwargs: Any) -> fields.BigIntField:
    """Minor units of the row's currency; never float or Decimal."""
    return fields.BigIntField(default=0, **kwargs)


def currency_field() -> fields.CharField[str]:
    return fields.CharField(max_length=3)


def enum_field(enum: type[StrEnum], **kwargs: Any) -> Any:
    return fields.CharEnumField(enum, max_length=32, **kwargs)


def sealed_column(field: fields.Field[Any]) -> str:
    """`<table>.<column>`: the associated data that ties a sealed value to its column."""
    return f"{field.model._meta.db_table}.{field.source_field or field.model_field_name}"


class EncryptedTextField(fields.TextField):
    """Text sealed with the current data key (personal data: an email address, an IP, a note).

    `blind_index` names the model's column that holds the value's keyed hash, for lookups by value.
    """

    def __init__(self, blind_index: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.blind_index = blind_index

    def to_db_value(self, value: Any, instance: type[Model] | Model) -> str | None:
        if value is None:
            return None
        return installed_data_keys().seal(str(value), sealed_column(self))

    def to_python_value(self, value: Any) -> str | None:
        if value is None:
            return None
        text = str(value)
        return installed_data_keys().open(text, sealed_column(self)) if is_sealed(text) else text


class EncryptedJSONField(fields.JSONField[Any]):
    """A JSON document sealed as one value (evidence that gathers personal data from several rows).
    Stored as TEXT: a sealed value is not JSON, so the database cannot look inside it."""

    SQL_TYPE = "TEXT"

    class _db_postgres:
        SQL_TYPE = "TEXT"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)

    def to_db_value(self, value: Any, instance: type[Model] | Model) -> str | None:
        if value is None:
            return None
        text = json.dumps(value, separators=(",", ":"))
        return installed_data_keys().seal(text, sealed_column(self))

    def to_python_value(self, value: Any) -> Any:
        if not isinstance(value, str | bytes):
            return value  # already a document (a model built in Python), or None
        text = value.decode("utf-8") if isinstance(value, bytes) else value
        if is_sealed(text):
            text = installed_data_keys().open(text, sealed_column(self))
        return json.loads(text)
