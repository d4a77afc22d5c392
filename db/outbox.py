"""Writing side effects to the outbox inside the transaction that caused them.

A message is unique by its dedupe key, so the same fact applied twice (five deliveries of one
webhook, a retry after a crash) leaves one message and so one email.
"""

from __future__ import annotations

from typing import Any

from db.insert_once import insert_once
from db.models import OutboxMessage
from db.new_rows import new_row
from db.unit_of_work import UnitOfWork


async def add_message(uow: UnitOfWork, kind: str, dedupe_key: str, payload: dict[str, Any]) -> bool:
    """Queue a side effect with the surrounding transaction; False if that key exists already."""
    message = new_row(OutboxMessage, kind=kind, dedupe_key=dedupe_key, payload=payload)
    if not await insert_once(message, uow.connection):
        return False
    uow.outbox_ids.append(message.id)
    return True
