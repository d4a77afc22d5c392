"""The migrations: they build the models' tables on an empty database, keep the rows of a database
made by an earlier migration, agree with the models, and make the ledger and audit tables
append-only inside the database itself.

Tortoise keeps its state in a context that the running app shares with the tests, so migrating
and introspecting a second database happens in a child Python process. Each test gets its own
database: a SQLite file, or a PostgreSQL database created and dropped here.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from tortoise import connections
from tortoise.exceptions import BaseORMException, IntegrityError

from db.append_only import AppendOnlyViolation
from db.models import AuditRecord, Customer, EventSource, Order, Payment, PaymentEvent, PaymentEventType
from domain.statuses import PaymentStatus
from tests.backends import Backend

REPO = Path(__file__).resolve().parents[2]
MIGRATIONS = sorted(path.stem for path in (REPO / "db" / "migrations").glob("[0-9][0-9][0-9][0-9]_*.py"))
RECORDER_TABLE = "tortoise_migrations"

CHILD = """
import asyncio, json, sys
from tortoise import Tortoise
from tortoise.context import TortoiseContext
from tortoise.migrations.api.migrate import migrate
from tortoise.migrations.autodetector import MigrationAutodetector
from db.config import APP_LABEL, tortoise_config

async def main(action, url, target):
    config = tortoise_config(url)
    if action == "migrate":
        try:
            await migrate(config=config, target=target or None)
        finally:
            await Tortoise.close_connections()
        return "ok"
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        models = list(ctx.apps[APP_LABEL].values())
        if action == "models":
            return {m._meta.db_table: sorted(m._meta.fields_db_projection.values()) for m in models}
        if action == "uniques":
            uniques = {}
            for m in models:
                column = {name: m._meta.fields_db_projection[name] for name in m._meta.fields_db_projection}
                for name, field in m._meta.fields_map.items():
                    if name in column and getattr(field, "source_field", None):
                        column[name] = field.source_field
                sets = [[column[name]] for name, field in m._meta.fields_map.items() if field.unique and name in column]
                for group in m._meta.unique_together:
                    sets.append(sorted(column.get(n, column.get(f"{n}_id", n)) for n in group))
                uniques[m._meta.db_table] = sorted(sorted(s) for s in sets)
            return uniques
        if action == "read":
            return {m._meta.db_table: sorted(str(row.pk) for row in await m.all()) for m in models}
        if action == "autodetect":
            writers = await MigrationAutodetector(ctx.apps, config["apps"]).changes()
            return [[w.name, [op.describe() for op in w.operations]] for w in writers]
    raise SystemExit(f"unknown action {action}")

print(json.dumps(asyncio.run(main(*sys.argv[1:]))))
"""


async def child(action: str, url: str, target: str = "") -> Any:
    """Run one Tortoise action on `url` in a fresh interpreter, so this process's context is untouched."""
    environment = os.environ | {"PYTHONPATH": str(REPO)}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", CHILD, action, url, target],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, f"{action} failed:\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
async def fresh_database(backend: Backend, tmp_path: Path) -> AsyncIterator[str]:
    """An empty database of the session's kind, dropped afterwards."""
    if not backend.is_postgres:
        yield f"sqlite://{tmp_path / 'fresh.sqlite3'}"
        return
    assert backend.admin_postgres_url is not None
    admin_url = backend.admin_postgres_url.replace("postgres://", "postgresql://", 1)
    name = f"payql_migrations_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base, _, _ = backend.admin_postgres_url.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


class RawDatabase:
    """Plain SQL on a migrated database, with `?` placeholders on both dialects."""

    def __init__(self, sqlite: sqlite3.Connection | None, postgres: asyncpg.Connection | None) -> None:
        self.sqlite = sqlite
        self.postgres = postgres

    def _pg(self, sql: str) -> str:
        parts = sql.split("?")
        return "".join(part + (f"${i}" if i < len(parts) else "") for i, part in enumerate(parts, start=1))

    def _param(self, value: object) -> object:
        if isinstance(value, dict | list):
            return json.dumps(value)
        if self.sqlite is not None and isinstance(value, uuid.UUID | datetime):
            return str(value)
        return value

    async def fetch(self, sql: str, *params: object) -> list[tuple[Any, ...]]:
        values = [self._param(p) for p in params]
        if self.sqlite is not None:
            return [tuple(row) for row in self.sqlite.execute(sql, values).fetchall()]
        assert self.postgres is not None
        return [tuple(row) for row in await self.postgres.fetch(self._pg(sql), *values)]

    async def execute(self, sql: str, *params: object) -> None:
        values = [self._param(p) for p in params]
        if self.sqlite is not None:
            with self.sqlite:
                self.sqlite.execute(sql, values)
            return
        assert self.postgres is not None
        await self.postgres.execute(self._pg(sql), *values)

    async def insert(self, table: str, row: dict[str, object]) -> None:
        columns = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        await self.execute(f"INSERT INTO {table} ({columns}) VALUES ({marks})", *row.values())

    async def tables(self) -> set[str]:
        if self.sqlite is not None:
            rows = await self.fetch("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        else:
            rows = await self.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {name for (name,) in rows}

    async def columns(self, table: str) -> set[str]:
        if self.sqlite is not None:
            return {row[1] for row in await self.fetch(f"PRAGMA table_info({table})")}
        rows = await self.fetch(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'public' AND table_name = ?",
            table,
        )
        return {name for (name,) in rows}

    async def unique_column_sets(self, table: str) -> list[list[str]]:
        """The column sets some unique index or primary key of `table` enforces."""
        if self.sqlite is not None:
            sets = [
                sorted(column for (column,) in await self.fetch(f"SELECT name FROM pragma_index_info('{name}')"))
                for (name,) in await self.fetch(f"SELECT name FROM pragma_index_list('{table}') WHERE \"unique\" = 1")
            ]
            primary = [row[1] for row in await self.fetch(f"PRAGMA table_info({table})") if row[5]]
            return [*sets, sorted(primary)]
        rows = await self.fetch(
            "SELECT array_agg(a.attname::text ORDER BY a.attname) FROM pg_index i "
            "JOIN pg_class t ON t.oid = i.indrelid JOIN pg_attribute a ON a.attrelid = t.oid "
            "AND a.attnum = ANY(i.indkey) WHERE t.relname = ? AND i.indisunique AND i.indpred IS NULL "
            "GROUP BY i.indexrelid",
            table,
        )
        return [sorted(columns) for (columns,) in rows]

    async def applied(self) -> list[str]:
        return [name for (name,) in await self.fetch(f"SELECT name FROM {RECORDER_TABLE} ORDER BY name")]


@asynccontextmanager
async def raw(url: str) -> AsyncIterator[RawDatabase]:
    if url.startswith("sqlite://"):
        connection = sqlite3.connect(url.removeprefix("sqlite://"))
        try:
            yield RawDatabase(connection, None)
        finally:
            connection.close()
        return
    postgres = await asyncpg.connect(url.replace("postgres://", "postgresql://", 1))
    try:
        yield RawDatabase(None, postgres)
    finally:
        await postgres.close()


async def test_migrating_an_empty_database_builds_the_models_tables(fresh_database: str) -> None:
    models = await child("models", "sqlite://:memory:")
    await child("migrate", fresh_database)
    async with raw(fresh_database) as db:
        assert await db.tables() == set(models) | {RECORDER_TABLE}
        for table, columns in models.items():
            assert await db.columns(table) == set(columns), table
        assert await db.applied() == MIGRATIONS


async def test_migrating_twice_changes_nothing(fresh_database: str) -> None:
    await child("migrate", fresh_database)
    async with raw(fresh_database) as db:
        before = await db.fetch(f"SELECT id, app, name, applied_at FROM {RECORDER_TABLE} ORDER BY name")
    await child("migrate", fresh_database)
    async with raw(fresh_database) as db:
        assert await db.fetch(f"SELECT id, app, name, applied_at FROM {RECORDER_TABLE} ORDER BY name") == before


async def test_every_uniqueness_the_models_declare_is_enforced_by_a_migrated_database(fresh_database: str) -> None:
    # SQLite rebuilds a table to alter a column, and a rebuild once dropped the ledger's unique
    # (payment_id, dedupe_key) (0007 restores it); the autodetector cannot see that, the catalog can.
    declared = await child("uniques", "sqlite://:memory:")
    await child("migrate", fresh_database)
    async with raw(fresh_database) as db:
        for table, column_sets in declared.items():
            enforced = await db.unique_column_sets(table)
            missing = [columns for columns in column_sets if columns not in enforced]
            assert not missing, f"{table}: nothing enforces uniqueness of {missing}"
    assert ["dedupe_key", "payment_id"] in declared["payment_events"]


async def test_the_migrations_match_the_models() -> None:
    assert await child("autodetect", "sqlite://:memory:") == []


# Rows as the 0001 schema stores them; this stays valid whatever later migrations add.
NOW = datetime(2025, 3, 1, 12, 30, tzinfo=UTC)
CUSTOMER, PRODUCT, PRICE, ORDER, LINE, PAYMENT, REFUND = (uuid.uuid4() for _ in range(7))
ROWS_AT_0001: dict[str, list[dict[str, object]]] = {
    "customers": [
        {"id": CUSTOMER, "external_id": "cus-1", "email": "a@example.com", "gateway_references": {"stripe": "cus_X"}}
        | {"created_at": NOW}
    ],
    "products": [{"id": PRODUCT, "name": "Mug", "description": "", "active": True, "created_at": NOW}],
    "prices": [
        {"id": PRICE, "product_id": PRODUCT, "lookup_key": "mug", "currency": "JPY", "unit_amount": 1500}
        | {"type": "ONE_TIME", "recurring_interval": None, "recurring_interval_count": 1, "active": True}
        | {"created_at": NOW}
    ],
    "orders": [
        {"id": ORDER, "customer_id": CUSTOMER, "status": "PAID", "currency": "JPY", "total_amount": 3000}
        | {"return_url": None, "checkout_ip": "203.0.113.7", "checkout_user_agent": "curl/8"}
        | {"created_at": NOW, "updated_at": NOW}
    ],
    "line_items": [
        {"id": LINE, "order_id": ORDER, "price_id": PRICE, "product_name": "Mug", "quantity": 2, "currency": "JPY"}
        | {"unit_amount": 1500, "total_amount": 3000}
    ],
    "payments": [
        {"id": PAYMENT, "order_id": ORDER, "gateway": "sandbox", "gateway_reference": "pi_1", "status": "PAID"}
        | {"idempotency_key": f"payment-{PAYMENT}", "capture_method": "AUTOMATIC", "payment_method": "pm_card_visa"}
        | {"currency": "JPY", "amount": 3000, "amount_authorized": 3000, "amount_captured": 3000}
        | {"amount_refunded": 500, "decline_code": None, "failure_message": None, "next_action": None}
        | {"created_at": NOW, "updated_at": NOW}
    ],
    "payment_events": [
        {"id": 7001, "payment_id": PAYMENT, "type": "CREATED", "dedupe_key": "created", "source": "API"}
        | {"status_before": None, "status_after": "PENDING", "amount": 3000, "currency": "JPY", "data": {}}
        | {"created_at": NOW},
        {"id": 7002, "payment_id": PAYMENT, "type": "CAPTURED", "dedupe_key": "evt_1", "source": "WEBHOOK"}
        | {"status_before": "PENDING", "status_after": "PAID", "amount": 3000, "currency": "JPY"}
        | {"data": {"gateway_status": "succeeded"}, "created_at": NOW},
    ],
    "refunds": [
        {"id": REFUND, "payment_id": PAYMENT, "gateway_reference": "re_1", "idempotency_key": f"refund-{REFUND}"}
        | {"status": "SUCCEEDED", "currency": "JPY", "amount": 500, "reason": "broken", "failure_reason": None}
        | {"created_at": NOW, "updated_at": NOW}
    ],
    "webhook_events": [
        {"id": 8001, "gateway": "sandbox", "event_id": "evt_1", "event_type": "payment.succeeded"}
        | {"status": "PROCESSED", "attempts": 1, "headers": {"x-signature": "t=1,v1=abc"}, "body": '{"id":"evt_1"}'}
        | {"source_ip": "198.51.100.2", "received_at": NOW, "next_attempt_at": None, "processed_at": NOW}
        | {"last_error": None}
    ],
    "idempotency_records": [
        {"id": 9001, "scope": "customer:cus-1:checkout", "key": "k-1", "request_hash": "ab" * 32}
        | {"state": "COMPLETED", "response": {"order": str(ORDER)}, "recovery_point": {"order_id": str(ORDER)}}
        | {"locked_until": NOW, "expires_at": NOW + timedelta(days=1), "created_at": NOW}
    ],
    "audit_records": [
        {"id": 6001, "actor": "gateway:sandbox", "action": "payment.paid", "entity_type": "payment"}
        | {"entity_id": str(PAYMENT), "status_before": "PENDING", "status_after": "PAID", "amount": 3000}
        | {"currency": "JPY", "reason": "", "request_id": "req-1", "source_ip": None, "data": {}, "created_at": NOW}
    ],
}


def comparable(value: object) -> object:
    """One spelling per value across drivers: uuids as text, JSON parsed, booleans as ints."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return json.loads(json.dumps(value))
    if isinstance(value, str) and value[:1] in ("{", "["):
        return json.loads(value)
    return value


async def test_upgrading_a_database_with_rows_keeps_them(fresh_database: str) -> None:
    first = MIGRATIONS[0]
    await child("migrate", fresh_database, f"models.{first}")
    async with raw(fresh_database) as db:
        assert await db.applied() == [first]
        for table, rows in ROWS_AT_0001.items():
            for row in rows:
                await db.insert(table, row)

    await child("migrate", fresh_database)

    async with raw(fresh_database) as db:
        assert await db.applied() == MIGRATIONS
        for table, rows in ROWS_AT_0001.items():
            assert await db.fetch(f"SELECT COUNT(*) FROM {table}") == [(len(rows),)], table
            for row in rows:
                columns = [c for c, v in row.items() if not isinstance(v, datetime)]
                stored = await db.fetch(f"SELECT {', '.join(columns)} FROM {table} WHERE id = ?", row["id"])
                assert [tuple(comparable(v) for v in r) for r in stored] == [
                    tuple(comparable(row[c]) for c in columns)
                ], table
        # The ledger rows that predate the triggers are protected by them now.
        with pytest.raises((sqlite3.DatabaseError, asyncpg.PostgresError), match="payment_events rows are append-only"):
            await db.execute("UPDATE payment_events SET amount = 0 WHERE id = ?", 7002)

    # And the current models read every old row (enums, JSON, datetimes, money).
    read = await child("read", fresh_database)
    for table, ids in read.items():
        assert ids == sorted(str(row["id"]) for row in ROWS_AT_0001.get(table, [])), table


# --- append-only ledger and audit tables on the session's database -------------------------------


@pytest.fixture
async def ledger_rows(server: str) -> tuple[PaymentEvent, AuditRecord]:
    customer = await Customer.create(external_id=f"customer-{uuid.uuid4().hex}")
    order = await Order.create(customer=customer, currency="USD", total_amount=1200)
    payment_id = uuid.uuid4()
    payment = await Payment.create(
        id=payment_id,
        order=order,
        gateway="sandbox",
        idempotency_key=f"payment-{payment_id}",
        payment_method="pm_card_visa",
        currency="USD",
        amount=1200,
    )
    event = await PaymentEvent.create(
        payment=payment,
        type=PaymentEventType.CREATED,
        dedupe_key="created",
        source=EventSource.API,
        status_after=PaymentStatus.PENDING,
        amount=1200,
        currency="USD",
    )
    audit = await AuditRecord.create(
        actor="customer:c-1", action="payment.created", entity_type="payment", entity_id=str(payment.id)
    )
    return event, audit


async def unchanged(event: PaymentEvent, audit: AuditRecord) -> None:
    stored_event = await PaymentEvent.get(id=event.id)
    stored_audit = await AuditRecord.get(id=audit.id)
    assert (stored_event.amount, stored_event.dedupe_key, stored_event.type) == (1200, "created", "CREATED")
    assert (stored_audit.actor, stored_audit.action) == ("customer:c-1", "payment.created")


# What a trigger's refusal surfaces as: Tortoise's error, or the driver's when Tortoise lets it through.
DATABASE_ERRORS = (BaseORMException, asyncpg.PostgresError)


@contextmanager
def refused_by_the_database(table: str) -> Iterator[None]:
    with pytest.raises(DATABASE_ERRORS, match=f"{table} rows are append-only"):
        yield


@pytest.mark.parametrize(
    ("table", "sql"),
    [
        ("payment_events", "UPDATE payment_events SET amount = amount + 1 WHERE id = {event}"),
        ("payment_events", "UPDATE payment_events SET dedupe_key = dedupe_key WHERE id = {event}"),
        ("payment_events", "DELETE FROM payment_events WHERE id = {event}"),
        ("audit_records", "UPDATE audit_records SET actor = 'admin:someone-else' WHERE id = {audit}"),
        ("audit_records", "DELETE FROM audit_records WHERE id = {audit}"),
        ("audit_records", "DELETE FROM audit_records"),
    ],
)
async def test_raw_sql_cannot_change_ledger_or_audit_rows(
    ledger_rows: tuple[PaymentEvent, AuditRecord], table: str, sql: str
) -> None:
    event, audit = ledger_rows
    with refused_by_the_database(table):
        await connections.get("default").execute_query(sql.format(event=event.id, audit=audit.id))
    await unchanged(event, audit)


async def test_queryset_update_and_delete_are_refused_by_the_database(
    ledger_rows: tuple[PaymentEvent, AuditRecord],
) -> None:
    event, audit = ledger_rows
    with refused_by_the_database("payment_events"):
        await PaymentEvent.filter(id=event.id).update(amount=0)
    with refused_by_the_database("payment_events"):
        await PaymentEvent.filter(id=event.id).delete()
    with refused_by_the_database("audit_records"):
        await AuditRecord.filter(id=audit.id).update(reason="tidied up")
    with refused_by_the_database("audit_records"):
        await AuditRecord.filter(id=audit.id).delete()
    await unchanged(event, audit)


async def test_the_refusal_is_the_same_tortoise_error_on_every_backend(
    ledger_rows: tuple[PaymentEvent, AuditRecord],
) -> None:
    event, audit = ledger_rows
    with pytest.raises(IntegrityError, match="payment_events rows are append-only"):
        await PaymentEvent.filter(id=event.id).update(amount=0)
    with pytest.raises(IntegrityError, match="audit_records rows are append-only"):
        await AuditRecord.filter(id=audit.id).delete()


async def test_the_models_refuse_to_save_after_insert_or_delete(
    ledger_rows: tuple[PaymentEvent, AuditRecord],
) -> None:
    event, audit = ledger_rows
    fetched_event = await PaymentEvent.get(id=event.id)
    fetched_audit = await AuditRecord.get(id=audit.id)
    for row in (event, audit, fetched_event, fetched_audit):
        if isinstance(row, PaymentEvent):
            row.amount = 1
        else:
            row.actor = "admin:someone-else"
        with pytest.raises(AppendOnlyViolation, match="append-only"):
            await row.save()
        with pytest.raises(AppendOnlyViolation, match="append-only"):
            await row.save(update_fields=["amount" if isinstance(row, PaymentEvent) else "actor"])
        with pytest.raises(AppendOnlyViolation, match="append-only"):
            await row.delete()
    await unchanged(event, audit)


async def test_the_ledger_still_accepts_new_rows(ledger_rows: tuple[PaymentEvent, AuditRecord]) -> None:
    event, _ = ledger_rows
    second = await PaymentEvent.create(
        payment_id=event.payment_id,
        type=PaymentEventType.FAILED,
        dedupe_key="evt_2",
        source=EventSource.WEBHOOK,
        status_before=PaymentStatus.PENDING,
        status_after=PaymentStatus.FAILED,
        currency="USD",
    )
    assert await PaymentEvent.filter(payment_id=event.payment_id).count() == 2
    assert second.id != event.id


# --- 0005: one live payment per order ------------------------------------------------------------


async def test_0005_keeps_a_failed_payment_without_reason_out_of_the_one_live_payment_index(
    fresh_database: str,
) -> None:
    await child("migrate", fresh_database, "models.0004_disputes_subscriptions")
    failed, pending = uuid.uuid4(), uuid.uuid4()
    async with raw(fresh_database) as db:
        for table in ("customers", "orders"):
            for row in ROWS_AT_0001[table]:
                await db.insert(table, row)
        for payment_id, status in ((failed, "FAILED"), (pending, "PENDING")):
            await db.insert(
                "payments",
                ROWS_AT_0001["payments"][0]
                | {"id": payment_id, "status": status, "gateway_reference": f"pi_{payment_id.hex}"}
                | {"idempotency_key": f"payment-{payment_id}", "amount_captured": 0, "amount_refunded": 0},
            )

    await child("migrate", fresh_database)

    async with raw(fresh_database) as db:
        assert await db.fetch("SELECT failure_message FROM payments WHERE id = ?", failed) == [("The payment failed.",)]
        # The failed one, charged after all, may become PAID beside the one in flight...
        await db.execute("UPDATE payments SET status = 'PAID' WHERE id = ?", failed)
        # ...but no new payment may join them.
        with pytest.raises((sqlite3.IntegrityError, asyncpg.UniqueViolationError)):
            await db.insert(
                "payments",
                ROWS_AT_0001["payments"][0]
                | {"id": uuid.uuid4(), "status": "PENDING", "gateway_reference": None}
                | {"idempotency_key": f"payment-{uuid.uuid4()}"},
            )


async def test_0007_refuses_a_sqlite_ledger_that_already_holds_a_fact_twice(tmp_path: Path) -> None:
    # Only SQLite databases can hold such a duplicate (PostgreSQL kept the constraint), so this
    # runs on a SQLite file whatever the session's backend.
    url = f"sqlite://{tmp_path / 'duplicated.sqlite3'}"
    await child("migrate", url, f"models.{MIGRATIONS[0]}")
    async with raw(url) as db:
        for table, rows in ROWS_AT_0001.items():
            for row in rows:
                await db.insert(table, row)
    await child("migrate", url, "models.0006_encrypt_personal_data")
    async with raw(url) as db:
        await db.insert("payment_events", ROWS_AT_0001["payment_events"][1] | {"id": 7003})

    with pytest.raises(AssertionError, match=rf"{PAYMENT}/evt_1 \(2 rows\)"):
        await child("migrate", url)

    async with raw(url) as db:
        assert "0007_payment_events_dedupe_index" not in await db.applied()
        assert await db.fetch("SELECT COUNT(*) FROM payment_events") == [(3,)]
