"""Every foreign key column leads an index (migration 0008), and the checkout's hottest lookup,
an order's payments, is an index search rather than a scan of every payment."""

from __future__ import annotations

from typing import Any

from tortoise import connections
from tortoise.transactions import in_transaction

from payql.wiring import Services
from tests.backends import Backend

PG_UNINDEXED_FOREIGN_KEYS = """
SELECT c.conrelid::regclass::text AS table_name, a.attname AS column_name
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace
  AND NOT EXISTS (
    SELECT 1 FROM pg_index i
    WHERE i.indrelid = c.conrelid AND i.indkey[0] = c.conkey[1] AND i.indpred IS NULL
  )
ORDER BY 1, 2
"""


async def rows(sql: str, *params: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = await connections.get("default").execute_query_dict(sql, list(params))
    return found


async def sqlite_unindexed_foreign_keys() -> list[tuple[str, str]]:
    missing = []
    for table in [row["name"] for row in await rows("SELECT name FROM sqlite_master WHERE type = 'table'")]:
        leading: set[str] = set()
        for index in await rows(f"PRAGMA index_list('{table}')"):
            if index["partial"]:
                continue  # a partial index serves only the queries that repeat its condition
            columns = await rows(f"PRAGMA index_info('{index['name']}')")
            leading.update(column["name"] for column in columns if column["seqno"] == 0)
        foreign_keys = {key["from"] for key in await rows(f"PRAGMA foreign_key_list('{table}')")}
        missing += [(table, column) for column in sorted(foreign_keys - leading)]
    return sorted(missing)


async def test_every_foreign_key_column_leads_an_index(services: Services, backend: Backend) -> None:
    if backend.is_postgres:
        missing = [(row["table_name"], row["column_name"]) for row in await rows(PG_UNINDEXED_FOREIGN_KEYS)]
    else:
        missing = await sqlite_unindexed_foreign_keys()
    assert missing == []


async def test_an_order_s_payments_are_found_through_an_index(services: Services, backend: Backend) -> None:
    if backend.is_postgres:
        async with in_transaction() as connection:
            # Without this, a tiny test table is scanned whatever the indexes; with it, a scan
            # appears only when no index can serve the query.
            await connection.execute_script("SET LOCAL enable_seqscan = off")
            plan = await connection.execute_query_dict(
                "EXPLAIN SELECT * FROM payments WHERE order_id = '00000000-0000-0000-0000-000000000000'"
            )
        text = "\n".join(row["QUERY PLAN"] for row in plan)
        assert "Index" in text and "Seq Scan" not in text, text
    else:
        plan = await rows("EXPLAIN QUERY PLAN SELECT * FROM payments WHERE order_id = ?", "x")
        text = "\n".join(row["detail"] for row in plan)
        assert "USING INDEX" in text and "SCAN payments" not in text, text
