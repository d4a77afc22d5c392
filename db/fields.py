"""Column helpers shared by the models, so money and statuses are declared the same way everywhere."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields


def money_field(**kwargs: Any) -> fields.BigIntField:
    """Minor units of the row's currency; never float or Decimal."""
    return fields.BigIntField(default=0, **kwargs)


def currency_field() -> fields.CharField[str]:
    return fields.CharField(max_length=3)


def enum_field(enum: type[StrEnum], **kwargs: Any) -> Any:
    return fields.CharEnumField(enum, max_length=32, **kwargs)
