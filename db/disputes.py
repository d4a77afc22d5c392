"""The dispute lifecycle: the only place dispute statuses change and disputed money moves in the ledger.

NEEDS_RESPONSE → UNDER_REVIEW → WON | LOST (a dispute may also close without evidence). A fact is
applied only when it moves a dispute forward, so duplicated, late and reordered webhooks end in the
same state: a closed dispute stays closed, and a `created` arriving after `closed` changes nothing.
Opening a dispute gathers its evidence, withdraws the disputed amount (ledger DISPUTE_WITHDRAWN) and
makes the order DISPUTED; winning reinstates the amount (DISPUTE_REINSTATED) and gives the order back
the status its payments give it; losing keeps the money withdrawn. Ledger entries are keyed by the
dispute, not by the event, so no two events can move the same money twice. Every change leaves an
audit record. Locks: order → payment → dispute, the order db/unit_of_work.py documents.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from db import dispute_evidence, merchant_events, transitions
from db.audit_trail import record_audit
from db.models import Dispute, DisputeNote, EventSource, Fulfillment, Order, Payment, PaymentEvent
from db.models import PaymentEventType as E
from db.outbox import add_message
from db.transitions import Actor
from db.unit_of_work import StatusChange, UnitOfWork, unit_of_work
from domain.statuses import DISPUTE_CLOSED, DisputeStatus
from gateways.types import DisputeEvidence, DisputeResult

D = DisputeStatus

# How far along a dispute is: a fact never moves it to a lower rank, nor between the two closed states.
_RANK: dict[DisputeStatus, int] = {D.NEEDS_RESPONSE: 0, D.UNDER_REVIEW: 1, D.WON: 2, D.LOST: 2}

DUE_SOON_EMAIL = "dispute_due_soon"


def is_forward(before: DisputeStatus, after: DisputeStatus) -> bool:
    return _RANK[after] > _RANK[before]


async def find_disputed_payment(gateway: str, result: DisputeResult) -> Payment | None:
    """The payment a dispute is about: the one of a dispute we mirror already, or ours by id or reference."""
    existing = await Dispute.get_or_none(gateway=gateway, gateway_reference=result.reference)
    if existing is not None:
        return await Payment.get(id=existing.payment_id)
    if result.payql_payment_id:
        try:
            payment = await Payment.get_or_none(id=uuid.UUID(result.payql_payment_id), gateway=gateway)
        except ValueError:
            payment = None
        if payment is not None:
            return payment
    return await Payment.get_or_none(gateway=gateway, gateway_reference=result.payment_reference)


async def apply_dispute_result(
    order: Order, payment: Payment, result: DisputeResult, *, source: EventSource, actor: Actor, uow: UnitOfWork
) -> bool:
    """Mirror what the gateway says of a dispute on a payment whose order and row are locked in `uow`,
    creating it the first time; False when it changes nothing."""
    dispute = (
        await Dispute.filter(gateway=payment.gateway, gateway_reference=result.reference)
        .using_db(uow.connection)
        .select_for_update()
        .first()
    )
    opened = dispute is None
    if dispute is None:
        dispute = await _open(order, payment, result, source, actor, uow)
    advanced = await _advance(order, payment, dispute, result.status, source, actor, uow)
    return opened or advanced


async def lock_dispute(dispute_id: uuid.UUID, uow: UnitOfWork) -> tuple[Order, Payment, Dispute]:
    """Lock order → payment → dispute, the documented order."""
    return await transitions.lock_under_payment(Dispute, dispute_id, uow)


async def record_evidence_submitted(
    dispute_id: uuid.UUID, result: DisputeResult, sent: DisputeEvidence, actor: Actor
) -> Dispute:
    """The gateway took our evidence: remember what was sent, by whom and when, and follow its status."""
    async with unit_of_work() as uow:
        order, payment, dispute = await lock_dispute(dispute_id, uow)
        before = dispute.status
        await _advance(order, payment, dispute, result.status, EventSource.API, actor, uow)
        if dispute.evidence_submitted_at is None:
            now = datetime.now(UTC)
            dispute.evidence_submitted_at = now
            submitted = {"at": now.isoformat(), "by": actor.name, "fields": asdict(sent)}
            dispute.evidence = {**dispute.evidence, "submitted": submitted}
            await dispute.save(
                using_db=uow.connection, update_fields=["evidence_submitted_at", "evidence", "updated_at"]
            )
            _audit(actor, "dispute.evidence_submitted", dispute, before, dispute.status, uow)
    return dispute


async def add_note(dispute_id: uuid.UUID, body: str, actor: Actor) -> DisputeNote:
    async with unit_of_work() as uow:
        _order, _payment, dispute = await lock_dispute(dispute_id, uow)
        note = await DisputeNote.create(dispute_id=dispute.id, author=actor.name, body=body, using_db=uow.connection)
        _audit(actor, "dispute.note_added", dispute, dispute.status, dispute.status, uow, {"note_id": note.id})
    return note


async def record_fulfillment(
    order_id: uuid.UUID, carrier: str, tracking_number: str, shipped_at: datetime | None, actor: Actor
) -> Fulfillment:
    async with unit_of_work() as uow:
        order = await transitions.lock_order(order_id, uow)
        fulfillment = await Fulfillment.create(
            order_id=order.id,
            carrier=carrier,
            tracking_number=tracking_number,
            shipped_at=shipped_at,
            recorded_by=actor.name,
            using_db=uow.connection,
        )
        record_audit(
            actor,
            "order.fulfillment_recorded",
            "order",
            order.id,
            before=order.status,
            after=order.status,
            amount=order.total_amount,
            currency=order.currency,
            uow=uow,
            data={"fulfillment_id": fulfillment.id, "carrier": carrier},  # the tracking number stays sealed in its row
        )
    return fulfillment


async def flag_due_soon(dispute_id: uuid.UUID, now: datetime, merchant_email: str | None, actor: Actor) -> bool:
    """Flag a dispute whose evidence is due soon, once, and email the merchant; False if it needs no flag."""
    async with unit_of_work() as uow:
        _order, _payment, dispute = await lock_dispute(dispute_id, uow)
        if (
            dispute.status is not D.NEEDS_RESPONSE
            or dispute.evidence_submitted_at is not None
            or dispute.due_soon_flagged_at is not None
        ):
            return False
        dispute.due_soon_flagged_at = now
        await dispute.save(using_db=uow.connection, update_fields=["due_soon_flagged_at", "updated_at"])
        _audit(actor, "dispute.due_soon_flagged", dispute, dispute.status, dispute.status, uow)
        if merchant_email:
            payload = {"dispute_id": str(dispute.id), "to": merchant_email}
            await add_message(uow, DUE_SOON_EMAIL, f"{DUE_SOON_EMAIL}:{dispute.id}", payload)
    return True


async def _open(
    order: Order, payment: Payment, result: DisputeResult, source: EventSource, actor: Actor, uow: UnitOfWork
) -> Dispute:
    due_by = datetime.fromtimestamp(result.evidence_due_by, UTC) if result.evidence_due_by else None
    dispute = await Dispute.create(
        payment_id=payment.id,
        gateway=payment.gateway,
        gateway_reference=result.reference,
        status=D.NEEDS_RESPONSE,
        reason=result.reason[:100],
        currency=result.amount.currency,
        amount=result.amount.amount,
        evidence_due_by=due_by,
        evidence=await dispute_evidence.gather(order, payment, uow.connection),
        using_db=uow.connection,
    )
    await _ledger(payment, dispute, E.DISPUTE_WITHDRAWN, source, uow)
    _audit(actor, "dispute.created", dispute, None, D.NEEDS_RESPONSE, uow)
    uow.changes.append(StatusChange("dispute", dispute.id, order.id, None, D.NEEDS_RESPONSE))
    await merchant_events.announce(uow, merchant_events.DISPUTE_CREATED, dispute, once=True)
    await transitions.mark_order_disputed(order, actor, uow)
    return dispute


async def _advance(
    order: Order,
    payment: Payment,
    dispute: Dispute,
    after: DisputeStatus,
    source: EventSource,
    actor: Actor,
    uow: UnitOfWork,
) -> bool:
    before = DisputeStatus(dispute.status)
    if not is_forward(before, after):
        return False
    dispute.status = after
    if after in DISPUTE_CLOSED:
        dispute.closed_at = datetime.now(UTC)
    await dispute.save(using_db=uow.connection, update_fields=["status", "closed_at", "updated_at"])
    if after is D.WON:
        await _ledger(payment, dispute, E.DISPUTE_REINSTATED, source, uow)
    _audit(actor, f"dispute.{after.lower()}", dispute, before, after, uow)
    uow.changes.append(StatusChange("dispute", dispute.id, order.id, before, after))
    if after in DISPUTE_CLOSED:
        await merchant_events.announce(uow, merchant_events.DISPUTE_CLOSED, dispute, once=True)
    if after is D.WON:
        await transitions.release_disputed_order(order, actor, uow)
    return True


async def _ledger(payment: Payment, dispute: Dispute, kind: E, source: EventSource, uow: UnitOfWork) -> None:
    key = f"dispute:{dispute.id}:{kind.lower()}"
    if await PaymentEvent.filter(payment_id=payment.id, dedupe_key=key).using_db(uow.connection).exists():
        return
    await PaymentEvent.create(
        payment_id=payment.id,
        type=kind,
        dedupe_key=key,
        source=source,
        status_before=payment.status,
        status_after=payment.status,
        amount=dispute.amount,
        currency=dispute.currency,
        data={"dispute_id": str(dispute.id), "reason": dispute.reason},
        using_db=uow.connection,
    )


def _audit(
    actor: Actor,
    action: str,
    dispute: Dispute,
    before: str | None,
    after: str,
    uow: UnitOfWork,
    extra: dict[str, Any] | None = None,
) -> None:
    record_audit(
        actor,
        action,
        "dispute",
        dispute.id,
        before=before,
        after=after,
        amount=dispute.amount,
        currency=dispute.currency,
        uow=uow,
        data={"payment_id": str(dispute.payment_id), "gateway_reference": dispute.gateway_reference, **(extra or {})},
    )
