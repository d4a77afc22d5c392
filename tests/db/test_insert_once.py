"""`insert_each_once`: several rows of one model in one `INSERT … ON CONFLICT DO NOTHING`, each
inserted unless its unique key is taken (by a stored row, or by an earlier row of the same call)."""

from __future__ import annotations

import json
import uuid

import pytest
from tortoise import connections

from db.encryption import is_sealed
from db.insert_once import insert_each_once
from db.models import WebhookEvent
from db.placeholders import for_connection
from db.transaction import transaction
from tests.db.test_audit_trail import count_statements

pytestmark = pytest.mark.usefixtures("server")


def event(event_id: str, *, note: str = "first") -> WebhookEvent:
    return WebhookEvent(
        gateway="sandbox",
        event_id=event_id,
        event_type="insert.test",
        headers={"x-note": note},
        body=json.dumps({"id": event_id, "note": note}),
    )


async def test_each_row_goes_in_once_by_its_key_in_one_statement(monkeypatch: pytest.MonkeyPatch) -> None:
    stored_before = event(f"evt_{uuid.uuid4().hex}")
    await stored_before.save()
    new_a, new_b = f"evt_{uuid.uuid4().hex}", f"evt_{uuid.uuid4().hex}"
    rows = [
        event(new_a),
        event(stored_before.event_id, note="again"),
        event(new_b),
        event(new_a, note="twice in one call"),
    ]
    async with transaction() as connection:
        ran = count_statements(monkeypatch, connection)
        inserted = await insert_each_once(rows, connection, ("gateway", "event_id"))
        assert len(ran) == 1
    assert inserted == [True, False, True, False]
    # The inserted rows carry their keys from the database; the others are left unsaved.
    assert rows[0].id is not None and rows[2].id is not None and rows[0].id != rows[2].id
    assert rows[1].id is None and rows[3].id is None
    first = await WebhookEvent.get(event_id=new_a)
    assert (first.id, first.headers) == (rows[0].id, {"x-note": "first"})
    assert (await WebhookEvent.get(event_id=stored_before.event_id)).headers == {"x-note": "first"}
    # Stored as the ORM stores it: the body sealed at rest.
    database = connections.get("default")
    raw = await database.execute_query_dict(
        for_connection("SELECT body FROM webhook_events WHERE id = $1", database), [rows[2].id]
    )
    assert is_sealed(raw[0]["body"]) and new_b not in raw[0]["body"]


async def test_nothing_to_insert_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    async with transaction() as connection:
        ran = count_statements(monkeypatch, connection)
        assert await insert_each_once([], connection, ("gateway", "event_id")) == []
        assert ran == []
