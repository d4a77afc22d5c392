"""`insert_each_once`: several rows of one model in one `INSERT … ON CONFLICT DO NOTHING`, each
inserted unless its unique key is taken (by a stored row, or by an earlier row of the same call), and
stored as the ORM stores an instance built with the same fields."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from tortoise import connections

from db.encryption import is_sealed
from db.insert_once import insert_each_once
from db.models import WebhookEvent, WebhookStatus
from db.placeholders import for_connection
from db.transaction import transaction
from tests.db.test_audit_trail import count_statements

pytestmark = pytest.mark.usefixtures("server")


def event(event_id: str, *, note: str = "first") -> dict[str, Any]:
    return {
        "gateway": "sandbox",
        "event_id": event_id,
        "event_type": "insert.test",
        "headers": {"x-note": note},
        "body": json.dumps({"id": event_id, "note": note}),
    }


async def test_each_row_goes_in_once_by_its_key_in_one_statement(monkeypatch: pytest.MonkeyPatch) -> None:
    stored_before = WebhookEvent(**event(f"evt_{uuid.uuid4().hex}"))
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
        inserted = await insert_each_once(WebhookEvent, rows, connection, ("gateway", "event_id"))
        assert len(ran) == 1
    # The inserted rows' keys from the database; None for the others.
    assert inserted[1] is None and inserted[3] is None
    assert inserted[0] is not None and inserted[2] is not None and inserted[0] != inserted[2]
    first = await WebhookEvent.get(event_id=new_a)
    assert (first.id, first.headers) == (inserted[0], {"x-note": "first"})
    assert (await WebhookEvent.get(event_id=stored_before.event_id)).headers == {"x-note": "first"}
    # Stored as the ORM stores it: the body sealed at rest.
    database = connections.get("default")
    raw = await database.execute_query_dict(
        for_connection("SELECT body FROM webhook_events WHERE id = $1", database), [inserted[2]]
    )
    assert is_sealed(raw[0]["body"]) and new_b not in raw[0]["body"]
    # The fields not given hold the model's defaults, as a saved instance's do.
    second = await WebhookEvent.get(id=inserted[2])
    assert (second.status, second.attempts, second.source_ip) == (WebhookStatus.RECEIVED, 0, None)
    assert second.received_at is not None


async def test_nothing_to_insert_sends_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    async with transaction() as connection:
        ran = count_statements(monkeypatch, connection)
        assert await insert_each_once(WebhookEvent, [], connection, ("gateway", "event_id")) == []
        assert ran == []
