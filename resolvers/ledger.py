"""Reading the ledger (`db.models.PaymentEvent`): staff only, like the audit trail.

A shopper sees their payments and refunds with their amounts, never the ledger behind them: its
rows carry the gateway's own statuses, where each fact came from, and dispute reasons. Nothing here
writes: the ledger is append-only and only `db/` appends to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from db.models import PaymentEvent
from resolvers.context import Caller


async def payment_ledger(
    caller: Caller, payment_id: UUID, load: Callable[[UUID], Awaitable[list[PaymentEvent]]]
) -> list[PaymentEvent]:
    """The payment's ledger events, oldest first; `load` batches the read across the payments asked for."""
    caller.require_admin()
    return await load(payment_id)
