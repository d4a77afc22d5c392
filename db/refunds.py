"""The refund lifecycle: the only place refund statuses change and refunded amounts move.

PENDING → SUCCEEDED | FAILED | CANCELED, and SUCCEEDED → FAILED when the bank returns a refund
days later. What is available to refund is what was captured minus refunds that succeeded or are
still pending, checked with the order and payment rows locked, so concurrent refunds can never
exceed the capture. Every move appends a ledger event (REFUNDED, or REFUND_REVERSED when money
comes back) and an audit record, and re-derives the order's status.
"""

from __future__ import annotations

import uuid

from db import merchant_events, transitions
from db.audit_trail import record_audit
from db.models import EventSource, Order, Payment, PaymentEvent, PaymentEventType, Refund
from db.transitions import Actor
from db.unit_of_work import StatusChange, UnitOfWork
from domain.statuses import PaymentStatus, RefundStatus

R = RefundStatus

REFUND_TRANSITIONS: dict[RefundStatus, frozenset[RefundStatus]] = {
    R.PENDING: frozenset({R.SUCCEEDED, R.FAILED, R.CANCELED}),
    R.SUCCEEDED: frozenset({R.FAILED}),
    R.FAILED: frozenset(),
    R.CANCELED: frozenset(),
}


# The refund statuses announced to the merchant's endpoints (db.merchant_events).
_MERCHANT_EVENT_FOR_STATUS: dict[RefundStatus, str] = {
    R.SUCCEEDED: merchant_events.REFUND_SUCCEEDED,
    R.FAILED: merchant_events.REFUND_FAILED,
}


class RefundNotAllowed(ValueError):
    """The payment cannot be refunded (not captured) or not by that much."""


def can_move_refund(before: RefundStatus, after: RefundStatus) -> bool:
    return after in REFUND_TRANSITIONS[before]


async def refundable_amount(payment: Payment, uow: UnitOfWork) -> int:
    """Captured minus what was refunded (ours, or made at the gateway directly) and minus refunds
    still pending. Call it with the payment locked."""
    refunds = await Refund.filter(payment_id=payment.id, status__in=[R.PENDING, R.SUCCEEDED]).using_db(uow.connection)
    pending: int = sum(r.amount for r in refunds if r.status is R.PENDING)
    succeeded: int = sum(r.amount for r in refunds if r.status is R.SUCCEEDED)
    captured: int = payment.amount_captured
    refunded: int = max(payment.amount_refunded, succeeded)
    return captured - refunded - pending


async def create_refund(
    order: Order, payment: Payment, amount: int | None, reason: str, actor: Actor, uow: UnitOfWork
) -> Refund:
    """Insert a PENDING refund for a locked, captured payment; None amount means all that is left."""
    if payment.status is not PaymentStatus.PAID:
        raise RefundNotAllowed("Only a captured payment can be refunded.")
    available = await refundable_amount(payment, uow)
    wanted = available if amount is None else amount
    if available <= 0:
        raise RefundNotAllowed("Nothing is left to refund on this payment.")
    if not 0 < wanted <= available:
        raise RefundNotAllowed(f"Refund between 1 and {available} minor units.")
    refund_id = uuid.uuid4()
    refund = await Refund.create(
        id=refund_id,
        payment_id=payment.id,
        idempotency_key=f"payql-refund-{refund_id}",
        currency=payment.currency,
        amount=wanted,
        reason=reason[:500],
        using_db=uow.connection,
    )
    _audit(actor, "refund.requested", refund, None, R.PENDING, uow)
    return refund


async def lock_refund(refund_id: uuid.UUID, uow: UnitOfWork) -> tuple[Order, Payment, Refund]:
    """Lock order → payment → refund, the documented order."""
    return await transitions.lock_under_payment(Refund, refund_id, uow)


async def apply_refund_status(
    order: Order,
    payment: Payment,
    refund: Refund,
    status: RefundStatus,
    *,
    source: EventSource,
    actor: Actor,
    uow: UnitOfWork,
    gateway_reference: str | None = None,
    failure_reason: str | None = None,
) -> bool:
    """Move a locked refund; a stale or repeated fact changes nothing and returns False."""
    before = RefundStatus(refund.status)
    if gateway_reference and not refund.gateway_reference:
        refund.gateway_reference = gateway_reference
    if status == before or not can_move_refund(before, status):
        if gateway_reference:
            await refund.save(using_db=uow.connection, update_fields=["gateway_reference", "updated_at"])
        return False
    refund.status = status
    if status is R.FAILED:
        refund.failure_reason = (failure_reason or "The refund failed.")[:500]
    await refund.save(using_db=uow.connection)

    if status is R.SUCCEEDED:
        succeeded = await Refund.filter(payment_id=payment.id, status=R.SUCCEEDED).using_db(uow.connection)
        # The gateway may have told us about this money already (a charge.refunded re-read):
        # the ledger only records what is new.
        new_total = max(payment.amount_refunded, sum(r.amount for r in succeeded))
        await _move_refunded(payment, new_total, PaymentEventType.REFUNDED, refund, source, uow)
    elif before is R.SUCCEEDED and status is R.FAILED:
        await _move_refunded(
            payment, payment.amount_refunded - refund.amount, PaymentEventType.REFUND_REVERSED, refund, source, uow
        )
    _audit(actor, f"refund.{status.lower()}", refund, before, status, uow)
    uow.changes.append(StatusChange("refund", refund.id, order.id, before, status))
    if status in _MERCHANT_EVENT_FOR_STATUS:
        await merchant_events.announce(uow, _MERCHANT_EVENT_FOR_STATUS[status], refund)
    await transitions.sync_order_status(order, actor, uow)
    return True


async def _move_refunded(
    payment: Payment, new_total: int, kind: PaymentEventType, refund: Refund, source: EventSource, uow: UnitOfWork
) -> None:
    delta = abs(new_total - payment.amount_refunded)
    if delta == 0:
        return
    payment.amount_refunded = new_total
    await payment.save(using_db=uow.connection, update_fields=["amount_refunded", "updated_at"])
    await PaymentEvent.create(
        payment_id=payment.id,
        type=kind,
        dedupe_key=f"refund:{refund.id}:{kind.lower()}",
        source=source,
        status_before=payment.status,
        status_after=payment.status,
        amount=delta,
        currency=payment.currency,
        data={"refund_id": str(refund.id)},
        using_db=uow.connection,
    )


def _audit(actor: Actor, action: str, refund: Refund, before: str | None, after: str, uow: UnitOfWork) -> None:
    record_audit(
        actor,
        action,
        "refund",
        refund.id,
        before=before,
        after=after,
        amount=refund.amount,
        currency=refund.currency,
        uow=uow,
        reason=actor.reason or refund.reason,
        data={"payment_id": str(refund.payment_id)},
    )
