"""`record_audit`: a unit of work's audit records are written with its transaction, all in one
statement as it ends, in the order they were made and stamped when they were made; a unit of work
that fails writes none."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from tortoise.backends.base.client import BaseDBAsyncClient

from db import sent_statements
from db.audit_trail import record_audit
from db.models import AuditRecord
from db.transitions import Actor
from db.unit_of_work import UnitOfWork, unit_of_work

pytestmark = pytest.mark.usefixtures("server")

ACTOR = Actor("admin:audit-trail", request_id="req-audit", source_ip="203.0.113.9", reason="checking")


def record(uow: UnitOfWork, entity_id: str, action: str) -> None:
    record_audit(
        ACTOR, action, "payment", entity_id, before="PENDING", after="PAID", amount=500, currency="EUR", uow=uow
    )


def count_statements(monkeypatch: pytest.MonkeyPatch, connection: BaseDBAsyncClient) -> list[str]:
    """The statements `connection` runs from now on: any of the client's ways to run one, and
    `db.sent_statements`' (which sends straight to asyncpg on PostgreSQL and through the client on
    SQLite, so a statement sent there is counted once)."""
    ran: list[str] = []
    client = type(connection)
    for name in ("execute_query", "execute_query_dict", "execute_insert", "execute_many", "execute_script"):
        original = getattr(client, name)

        def counted(self: Any, query: str, *args: Any, _original: Callable[..., Any] = original) -> Any:
            if not sending_directly:
                ran.append(query)
            return _original(self, query, *args)

        monkeypatch.setattr(client, name, counted)
    sending_directly: list[str] = []
    for name in ("fetch", "fetch_value", "execute"):
        direct = getattr(sent_statements, name)

        async def sent(
            client: BaseDBAsyncClient, statement: str, values: Any, _direct: Callable[..., Any] = direct
        ) -> Any:
            ran.append(statement)
            sending_directly.append(statement)
            try:
                return await _direct(client, statement, values)
            finally:
                sending_directly.pop()

        monkeypatch.setattr(sent_statements, name, sent)
    return ran


async def test_the_records_are_written_in_one_statement_in_order_as_the_unit_of_work_ends(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entity_id = str(uuid.uuid4())
    started = datetime.now(UTC)
    async with unit_of_work() as uow:
        ran = count_statements(monkeypatch, uow.connection)
        for action in ("payment.created", "order.processing", "payment.paid"):
            record(uow, entity_id, action)
        assert ran == []  # nothing written yet
        made = datetime.now(UTC)
    assert len(ran) == 1

    records = await AuditRecord.filter(entity_id=entity_id).order_by("id")
    assert [r.action for r in records] == ["payment.created", "order.processing", "payment.paid"]
    assert all(started <= r.created_at <= made for r in records)
    first = records[0]
    kept = (first.actor, first.request_id, first.source_ip, first.reason, first.amount, first.currency)
    assert kept == ("admin:audit-trail", "req-audit", "203.0.113.9", "checking", 500, "EUR")


async def test_a_unit_of_work_that_fails_writes_none_of_its_records() -> None:
    entity_id = str(uuid.uuid4())
    with pytest.raises(RuntimeError):
        async with unit_of_work() as uow:
            record(uow, entity_id, "payment.created")
            raise RuntimeError("the change failed after its audit record was made")
    assert not await AuditRecord.exists(entity_id=entity_id)


async def test_a_unit_of_work_without_records_runs_no_insert(monkeypatch: pytest.MonkeyPatch) -> None:
    async with unit_of_work() as uow:
        ran = count_statements(monkeypatch, uow.connection)
    assert ran == []
