"""`payql keys rotate`: seal every personal data column under the current data key (values sealed
with an older key, and plaintext left from before encryption) and recompute the blind indexes, in
batches by primary key.

Identifiers in the SQL come from the models' metadata, never from input; values are parameters.
Each row is written with a compare-and-set on the value read: a row the application changed in the
meantime (it seals with the current key itself) is left as it is. A second run changes nothing. A
value that no configured key opens is counted and never overwritten. Audit records are append-only:
the database lets this module, and nothing else, replace their source IP with a re-sealed one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tortoise import Tortoise, connections
from tortoise.backends.base.client import BaseDBAsyncClient

from db.config import APP_LABEL
from db.encryption import KEY_ID_CHARS, PREFIX, DataKeys, DecryptionError, sealed_key_id
from db.fields import EncryptedJSONField, EncryptedTextField, sealed_column
from db.transaction import transaction

BATCH_SIZE = 500
PLAINTEXT = "plaintext"

Placeholder = Callable[[int], str]  # the dialect's n-th query parameter: "?" or "$n"


@dataclass(frozen=True)
class SealedColumn:
    table: str
    pk: str
    column: str
    index_column: str | None
    associated_data: str  # what the value is sealed to: `<table>.<column>`


@dataclass
class ColumnReport:
    column: SealedColumn
    resealed: int = 0
    reindexed: int = 0
    unreadable: list[Any] = field(default_factory=list)  # primary keys


def sealed_columns() -> list[SealedColumn]:
    """Every encrypted column of every model, found from the field types (nothing to keep in step)."""
    found = []
    for model in Tortoise.apps[APP_LABEL].values():
        meta = model._meta
        for name, model_field in meta.fields_map.items():
            if not isinstance(model_field, EncryptedTextField | EncryptedJSONField):
                continue
            index = getattr(model_field, "blind_index", None)
            found.append(
                SealedColumn(
                    table=meta.db_table,
                    pk=meta.db_pk_column,
                    column=meta.fields_db_projection[name],
                    index_column=meta.fields_db_projection[index] if index else None,
                    associated_data=sealed_column(model_field),
                )
            )
    return sorted(found, key=lambda c: (c.table, c.column))


async def reseal_all(keys: DataKeys, batch_size: int = BATCH_SIZE) -> list[ColumnReport]:
    return [await reseal_column(column, keys, batch_size) for column in sealed_columns()]


async def reseal_column(column: SealedColumn, keys: DataKeys, batch_size: int = BATCH_SIZE) -> ColumnReport:
    report = ColumnReport(column)
    client = connections.get("default")
    q = _placeholders(client)
    index = f', "{column.index_column}" AS stored_index' if column.index_column else ", NULL AS stored_index"
    last: Any = None
    while True:
        after = f'AND "{column.pk}" > {q(1)} ' if last is not None else ""
        rows = await client.execute_query_dict(
            f'SELECT "{column.pk}" AS pk, "{column.column}" AS stored{index} FROM "{column.table}" '  # noqa: S608
            f'WHERE "{column.column}" IS NOT NULL {after}ORDER BY "{column.pk}" LIMIT {int(batch_size)}',
            [last] if last is not None else [],
        )
        if not rows:
            return report
        async with transaction() as connection:
            for row in rows:
                await _reseal_row(connection, q, column, keys, row, report)
        last = rows[-1]["pk"]


async def _reseal_row(
    connection: BaseDBAsyncClient,
    q: Placeholder,
    column: SealedColumn,
    keys: DataKeys,
    row: dict[str, Any],
    report: ColumnReport,
) -> None:
    pk, stored = row["pk"], str(row["stored"])
    try:
        plaintext = keys.open(stored, column.associated_data)
    except DecryptionError:
        report.unreadable.append(pk)
        return
    sealed = stored if keys.is_current(stored) else keys.seal(plaintext, column.associated_data)
    assignments = {column.column: sealed}
    if column.index_column is not None:
        index = keys.blind_index(plaintext)
        if index != row["stored_index"]:
            assignments[column.index_column] = index
    if assignments == {column.column: stored}:
        return
    names = list(assignments)
    setters = ", ".join(f'"{name}" = {q(position)}' for position, name in enumerate(names, start=1))
    written, _ = await connection.execute_query(
        f'UPDATE "{column.table}" SET {setters} '  # noqa: S608
        f'WHERE "{column.pk}" = {q(len(names) + 1)} AND "{column.column}" = {q(len(names) + 2)}',
        [*assignments.values(), pk, stored],
    )
    if written:
        report.resealed += sealed != stored
        report.reindexed += column.index_column in assignments


async def key_usage() -> dict[str, Counter[str]]:
    """Per column (`table.column`), how many values each key id sealed, and how many are plaintext:
    a key may leave PAYQL_DATA_KEYS once no column uses it."""
    client = connections.get("default")
    head = len(PREFIX) + KEY_ID_CHARS
    usage: dict[str, Counter[str]] = {}
    for column in sealed_columns():
        rows = await client.execute_query_dict(
            f'SELECT substr("{column.column}", 1, {head}) AS head, COUNT(*) AS n FROM "{column.table}" '  # noqa: S608
            f'WHERE "{column.column}" IS NOT NULL GROUP BY substr("{column.column}", 1, {head})'
        )
        counts: Counter[str] = Counter()
        for row in rows:
            counts[sealed_key_id(str(row["head"]) + ":") or PLAINTEXT] += int(row["n"])
        usage[column.associated_data] = counts
    return usage


def _placeholders(client: BaseDBAsyncClient) -> Placeholder:
    if client.capabilities.dialect == "postgres":
        return lambda position: f"${position}"
    return lambda _position: "?"
