"""Writing one audit record: who (the actor, its request and address), did what, to which entity,
with its status and amount before and after, and why. Every module that changes money or status
writes through here, inside its own unit of work; records are never updated or deleted.

A record is stamped when it is made and written with the unit of work's others in one statement
as the unit of work ends, inside its transaction (`db.unit_of_work`): a payment's change records
two or more, and each was a round trip of its own. Nothing reads a unit of work's audit records
back inside it.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from db.models import AuditRecord
from db.new_rows import new_row
from db.unit_of_work import UnitOfWork

if TYPE_CHECKING:
    from db.transitions import Actor


def record_audit(
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: object,
    *,
    before: str | None,
    after: str | None,
    amount: int | None,
    currency: str | None,
    uow: UnitOfWork,
    reason: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """`reason` defaults to the actor's; `amount` and `currency` are None for a change that moves no money."""
    record = new_row(
        AuditRecord,
        actor=actor.name,
        action=action,
        entity_type=entity_type,
        entity_id=str(entity_id),
        status_before=before,
        status_after=after,
        amount=amount,
        currency=currency,
        reason=actor.reason if reason is None else reason,
        request_id=actor.request_id,
        source_ip=actor.source_ip,
        data=data or {},
        created_at=datetime.now(UTC),
    )
    uow.audits.append(record)
