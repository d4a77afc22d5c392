"""Writing side effects to the outbox inside the transaction that caused them.

A message is unique by its dedupe key, so the same fact applied twice (five deliveries of one
webhook, a retry after a crash) leaves one message and so one email.
"""

from __future__ import annotations

from typing import Any

from tortoise.exceptions import IntegrityError

from db.models import OutboxMessage
from db.transaction import transaction
from db.unit_of_work import UnitOfWork


async def add_message(uow: UnitOfWork, kind: str, dedupe_key: str, payload: dict[str, Any]) -> bool:
    """Queue a side effect with the surrounding transaction; False if that key exists already."""
    if await OutboxMessage.filter(dedupe_key=dedupe_key).using_db(uow.connection).exists():
        return False
    try:
        # A savepoint: on PostgreSQL a failed INSERT must not abort the caller's transaction.
        async with transaction() as savepoint:
            message = await OutboxMessage.create(kind=kind, dedupe_key=dedupe_key, payload=payload, using_db=savepoint)
    except IntegrityError:
        return False
    uow.outbox_ids.append(message.id)
    return True
