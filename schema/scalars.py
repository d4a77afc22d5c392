"""Custom scalars. Amounts are minor units and can exceed GraphQL's 32-bit Int, so they get their own."""

from __future__ import annotations

from typing import NewType

import strawberry
from strawberry.types.scalar import ScalarDefinition

MinorUnits = NewType("MinorUnits", int)


def _parse_minor_units(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError("MinorUnits must be an integer number of minor units")
    return value


SCALAR_MAP: dict[object, ScalarDefinition] = {
    MinorUnits: strawberry.scalar(
        name="MinorUnits",
        description="An integer amount in the currency's minor unit (cents for USD, yen for JPY, fils for KWD).",
        serialize=int,
        parse_value=_parse_minor_units,
    )
}
