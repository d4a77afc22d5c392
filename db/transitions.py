"""The only place that changes order and payment statuses.

It knows the allowed moves, applies what a gateway said (an API answer, a webhook or a
reconciliation read) idempotently by dedupe key, never moves a payment backwards, appends a
ledger event and an audit record for every real change, derives the order's status from its
payments, and writes the side effects of a change (a receipt when an order is paid) to the outbox
in the same transaction. A client callback or redirect never reaches this module; only server-to-server facts do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

from tortoise.models import Model

from db import merchant_events
from db.audit_trail import record_audit
from db.insert_once import insert_once
from db.models import EventSource, Order, Payment, PaymentEvent, PaymentEventType
from db.new_rows import new_row
from db.outbox import add_message
from db.row_inserts import insert_rows
from db.row_reads import read_rows
from db.row_updates import save_columns
from db.unit_of_work import StatusChange, UnitOfWork
from domain.statuses import PAYMENT_IN_FLIGHT, PAYMENT_SUCCEEDED, OrderStatus, PaymentStatus

logger = logging.getLogger(__name__)

_UnderPayment = TypeVar("_UnderPayment", bound=Model)

P = PaymentStatus
O = OrderStatus  # noqa: E741

PAYMENT_TRANSITIONS: dict[PaymentStatus, frozenset[PaymentStatus]] = {
    P.PENDING: frozenset({P.REQUIRES_ACTION, P.PROCESSING, P.AUTHORIZED, P.PAID, P.FAILED, P.CANCELED}),
    P.REQUIRES_ACTION: frozenset({P.PROCESSING, P.AUTHORIZED, P.PAID, P.FAILED, P.CANCELED}),
    P.PROCESSING: frozenset({P.REQUIRES_ACTION, P.AUTHORIZED, P.PAID, P.FAILED, P.CANCELED}),
    P.AUTHORIZED: frozenset({P.PAID, P.CANCELED}),
    P.PAID: frozenset(),
    # A gateway that later reports money taken on a payment we saw fail is believed: losing track of
    # captured money is worse than a surprising move, and the audit trail shows it.
    P.FAILED: frozenset({P.AUTHORIZED, P.PAID}),
    P.CANCELED: frozenset(),
}

FAILED_WITHOUT_REASON = "The payment failed."

_REFUNDED = (O.PARTIALLY_REFUNDED, O.REFUNDED)

ORDER_TRANSITIONS: dict[OrderStatus, frozenset[OrderStatus]] = {
    # We may learn of a capture and its refund together (events out of order, a reconciliation
    # read), so an unpaid order can go straight to (partially) refunded.
    O.PENDING: frozenset({O.REQUIRES_ACTION, O.PROCESSING, O.AUTHORIZED, O.PAID, *_REFUNDED, O.CANCELED}),
    O.REQUIRES_ACTION: frozenset({O.PENDING, O.PROCESSING, O.AUTHORIZED, O.PAID, *_REFUNDED, O.CANCELED}),
    O.PROCESSING: frozenset({O.PENDING, O.REQUIRES_ACTION, O.AUTHORIZED, O.PAID, *_REFUNDED, O.CANCELED}),
    O.AUTHORIZED: frozenset({O.PENDING, O.PAID, *_REFUNDED, O.CANCELED}),
    O.PAID: frozenset({O.PARTIALLY_REFUNDED, O.REFUNDED, O.DISPUTED}),
    # A refund that fails after succeeding gives the money back to the order: back one step.
    O.PARTIALLY_REFUNDED: frozenset({O.PAID, O.REFUNDED, O.DISPUTED}),
    O.REFUNDED: frozenset({O.PAID, O.PARTIALLY_REFUNDED, O.DISPUTED}),
    O.DISPUTED: frozenset({O.PAID, O.PARTIALLY_REFUNDED, O.REFUNDED}),
    O.CANCELED: frozenset(),
}

ORDER_FINAL: frozenset[OrderStatus] = frozenset({O.PAID, O.REFUNDED, O.CANCELED})


class IllegalTransition(ValueError):
    def __init__(self, entity: str, before: str, after: str) -> None:
        super().__init__(f"{entity} cannot move from {before} to {after}")
        self.before = before
        self.after = after


def can_move_payment(before: PaymentStatus, after: PaymentStatus) -> bool:
    return after in PAYMENT_TRANSITIONS[before]


def can_move_order(before: OrderStatus, after: OrderStatus) -> bool:
    return after in ORDER_TRANSITIONS[before]


def require_payment_move(before: PaymentStatus, after: PaymentStatus) -> None:
    if not can_move_payment(before, after):
        raise IllegalTransition("payment", before, after)


def require_order_move(before: OrderStatus, after: OrderStatus) -> None:
    if not can_move_order(before, after):
        raise IllegalTransition("order", before, after)


@dataclass(frozen=True, slots=True)
class PaymentUpdate:
    """What a server-to-server source says about a payment, already normalized."""

    status: PaymentStatus
    gateway_reference: str | None = None
    amount_authorized: int | None = None
    amount_captured: int | None = None
    amount_refunded: int | None = None
    next_action: dict[str, Any] | None = None
    decline_code: str | None = None
    failure_message: str | None = None
    gateway_status: str = ""


@dataclass(frozen=True, slots=True)
class Actor:
    """Who caused a change, for the audit trail."""

    name: str  # "customer:<sub>", "admin:<sub>", "gateway:<name>", "system:reconciliation"
    request_id: str | None = None
    source_ip: str | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class PaymentChangeResult:
    changed: bool
    payment: Payment
    order: Order


_EVENT_FOR_STATUS: dict[PaymentStatus, PaymentEventType] = {
    P.REQUIRES_ACTION: PaymentEventType.REQUIRES_ACTION,
    P.PROCESSING: PaymentEventType.PROCESSING,
    P.AUTHORIZED: PaymentEventType.AUTHORIZED,
    P.PAID: PaymentEventType.CAPTURED,
    P.FAILED: PaymentEventType.FAILED,
    P.CANCELED: PaymentEventType.VOIDED,
}


# The payment statuses announced to the merchant's endpoints (db.merchant_events).
_MERCHANT_EVENT_FOR_STATUS: dict[PaymentStatus, str] = {
    P.PAID: merchant_events.PAYMENT_SUCCEEDED,
    P.FAILED: merchant_events.PAYMENT_FAILED,
    P.REQUIRES_ACTION: merchant_events.PAYMENT_REQUIRES_ACTION,
}


async def lock_order(order_id: UUID, uow: UnitOfWork) -> Order:
    return await Order.filter(id=order_id).using_db(uow.connection).select_for_update().get()


_ORDER_OF_PAYMENT = "id = (SELECT order_id FROM payments WHERE id = $1)"


async def payments_of(order: Order, uow: UnitOfWork) -> list[Payment]:
    """Every payment of the order (which the caller holds locked)."""
    return await read_rows(Payment, "order_id = $1", [order.id], uow.connection)


@dataclass(frozen=True, slots=True)
class LockedPayment:
    order: Order
    payment: Payment
    others: list[Payment]  # the order's other payments, locked with it


async def lock_payment(payment_id: UUID, uow: UnitOfWork) -> tuple[Order, Payment]:
    """Lock the payment's order, then the payment (the documented lock order)."""
    locked = await lock_payment_and_others(payment_id, uow)
    return locked.order, locked.payment


async def lock_payment_and_others(payment_id: UUID, uow: UnitOfWork) -> LockedPayment:
    """Lock the payment's order, then all of the order's payments: two statements, the first finding
    the order by the payment's (never changing) order id. The order's status derives from all its
    payments, so a change to one reads the others anyway; locking them in the same statement spares
    that read. No deadlock comes of it: a payment row is only ever locked or written under its
    order's lock, which this holds first."""
    orders = await read_rows(Order, _ORDER_OF_PAYMENT, [payment_id], uow.connection, for_update=True)
    if not orders:
        raise LookupError(f"payment {payment_id} not found")
    order = orders[0]  # found through the payment, which is never deleted
    payments = await read_rows(Payment, "order_id = $1", [order.id], uow.connection, for_update=True)
    payment = next(p for p in payments if p.id == payment_id)
    return LockedPayment(order, payment, [p for p in payments if p.id != payment_id])


async def lock_under_payment(
    model: type[_UnderPayment], row_id: UUID, uow: UnitOfWork
) -> tuple[Order, Payment, _UnderPayment]:
    """Lock a row that belongs to a payment (a refund, a dispute) after its order and payment: the
    documented order → payment → child."""
    found = await model.filter(id=row_id).using_db(uow.connection).first().values_list("payment_id", flat=True)
    if found is None:
        raise LookupError(f"{model.__name__.lower()} {row_id} not found")
    order, payment = await lock_payment(UUID(str(found)), uow)
    row = await model.filter(id=row_id).using_db(uow.connection).select_for_update().get()
    return order, payment, row


async def record_payment_created(
    payment: Payment, order: Order, others: list[Payment], actor: Actor, uow: UnitOfWork
) -> None:
    """Ledger and audit for a payment row just inserted as PENDING; the order follows. `others`: the
    order's other payments, read under the order's lock (so not read again here)."""
    created = new_row(
        PaymentEvent,
        payment=payment,
        type=PaymentEventType.CREATED,
        dedupe_key="created",
        source=EventSource.API,
        status_before=None,
        status_after=payment.status,
        amount=payment.amount,
        currency=payment.currency,
    )
    await insert_rows([created], uow.connection)
    _audit(actor, "payment.created", "payment", payment.id, None, payment.status, payment, uow)
    await _sync_order_status(order, actor, uow, [*others, payment])


async def apply_payment_update(
    order: Order,
    payment: Payment,
    update: PaymentUpdate,
    *,
    source: EventSource,
    actor: Actor,
    dedupe_key: str | None = None,
    uow: UnitOfWork,
    others: list[Payment] | None = None,
) -> PaymentChangeResult:
    """Apply one fact about a payment whose order and row are locked in `uow`. `others`: the order's
    other payments, locked with it and unchanged since (`lock_payment_and_others`), else read here.

    Idempotent by (payment, dedupe_key): a webhook passes its event id; API answers and reads
    default to a key naming the fact itself, so the same fact from two sources applies once. A fact
    that would move the payment backwards is stale and changes nothing.
    """
    before = payment.status
    key = dedupe_key or _fact_key(before, update)
    status_moves = update.status != before
    if status_moves and not can_move_payment(before, update.status):
        logger.info(
            "stale payment update ignored",
            extra={"payment_id": str(payment.id), "before": before, "after": update.status, "source": source},
        )
        return PaymentChangeResult(False, payment, order)

    captured_before, refunded_before = payment.amount_captured, payment.amount_refunded
    new_authorized = max(payment.amount_authorized, update.amount_authorized or 0)
    new_captured = max(captured_before, update.amount_captured or 0)
    # A refund reported before the success it follows is kept: amounts only grow, whatever the order.
    new_refunded = max(refunded_before, update.amount_refunded or 0)
    amounts_move = (new_authorized, new_captured, new_refunded) != (
        payment.amount_authorized,
        captured_before,
        refunded_before,
    )
    if not status_moves and not amounts_move:
        return PaymentChangeResult(False, payment, order)

    entries: list[tuple[PaymentEventType, int]] = []
    if status_moves:
        event_type = _EVENT_FOR_STATUS.get(update.status, PaymentEventType.PROCESSING)
        amount = {
            PaymentEventType.CAPTURED: new_captured - captured_before,
            PaymentEventType.AUTHORIZED: new_authorized,
        }.get(event_type, 0)
        entries.append((event_type, amount))
    elif new_captured > captured_before:
        entries.append((PaymentEventType.CAPTURED, new_captured - captured_before))
    if new_refunded > refunded_before:
        entries.append((PaymentEventType.REFUNDED, new_refunded - refunded_before))
    events = [
        new_row(
            PaymentEvent,
            payment_id=payment.id,
            type=event_type,
            dedupe_key=key if index == 0 else f"{key}:{event_type.lower()}",
            source=source,
            status_before=before,
            status_after=update.status,
            amount=amount,
            currency=payment.currency,
            data={"gateway_status": update.gateway_status, "decline_code": update.decline_code},
        )
        for index, (event_type, amount) in enumerate(entries)
    ]
    # The fact's own ledger row goes first and is the dedupe check, in one statement: a fact applied
    # already (the same webhook twice, an answer and its webhook) inserts nothing and changes nothing.
    if events:
        if not await insert_once(events[0], uow.connection):
            return PaymentChangeResult(False, payment, order)
    elif await PaymentEvent.filter(payment_id=payment.id, dedupe_key=key).using_db(uow.connection).exists():
        return PaymentChangeResult(False, payment, order)

    payment.status = update.status
    payment.amount_authorized = new_authorized
    payment.amount_captured = new_captured
    payment.amount_refunded = new_refunded
    # Only what this fact can change is written (not the payment's other dozen columns).
    changed = ["status", "amount_authorized", "amount_captured", "amount_refunded", "next_action", "updated_at"]
    if update.gateway_reference and not payment.gateway_reference:
        payment.gateway_reference = update.gateway_reference
        changed.append("gateway_reference")
    payment.next_action = update.next_action if update.status is P.REQUIRES_ACTION else None
    if update.status is P.FAILED:
        payment.decline_code = update.decline_code
        # Never empty: the one-live-payment index (migration 0005) tells a failed row by its reason.
        payment.failure_message = update.failure_message or FAILED_WITHOUT_REASON
        changed += ["decline_code", "failure_message"]
    await save_columns(payment, changed, uow.connection)
    for event in events[1:]:
        await event.save(using_db=uow.connection)
    _audit(actor, f"payment.{update.status.lower()}", "payment", payment.id, before, update.status, payment, uow)
    if status_moves:
        uow.changes.append(StatusChange("payment", payment.id, order.id, before, update.status))
        if update.status in _MERCHANT_EVENT_FOR_STATUS:
            await merchant_events.announce(uow, _MERCHANT_EVENT_FOR_STATUS[update.status], payment)
    await _sync_order_status(order, actor, uow, None if others is None else [*others, payment])
    return PaymentChangeResult(True, payment, order)


async def cancel_unpaid_order(order: Order, actor: Actor, uow: UnitOfWork) -> bool:
    """Cancel a locked order that has no payment in flight or succeeded; False if it must stay."""
    payments = await payments_of(order, uow)
    if any(p.status in PAYMENT_IN_FLIGHT or p.status in PAYMENT_SUCCEEDED for p in payments):
        return False
    before = order.status
    if not can_move_order(before, O.CANCELED):
        return False
    order.status = O.CANCELED
    await save_columns(order, ("status", "updated_at"), uow.connection)
    _audit(actor, "order.canceled", "order", order.id, before, O.CANCELED, order, uow)
    uow.changes.append(StatusChange("order", order.id, order.id, before, O.CANCELED))
    await merchant_events.announce(uow, merchant_events.ORDER_CANCELED, order, once=True)
    return True


async def mark_order_disputed(order: Order, actor: Actor, uow: UnitOfWork) -> bool:
    """A chargeback was opened on one of the locked order's payments: the order is DISPUTED (sticky)
    until the dispute is won. False when the order was not paid (nothing to dispute) or is already so."""
    return await _move_order(order, O.DISPUTED, actor, uow)


async def release_disputed_order(order: Order, actor: Actor, uow: UnitOfWork) -> bool:
    """A won chargeback: the locked order goes back to the status its payments give it."""
    if order.status is not O.DISPUTED:
        return False
    payments = await payments_of(order, uow)
    return await _move_order(order, _status_from_payments(payments), actor, uow)


async def _move_order(order: Order, after: OrderStatus, actor: Actor, uow: UnitOfWork) -> bool:
    before = order.status
    if before == after or not can_move_order(before, after):
        return False
    order.status = after
    await save_columns(order, ("status", "updated_at"), uow.connection)
    _audit(actor, f"order.{after.lower()}", "order", order.id, before, after, order, uow)
    uow.changes.append(StatusChange("order", order.id, order.id, before, after))
    return True


def _fact_key(before: PaymentStatus, update: PaymentUpdate) -> str:
    amounts = f"{update.amount_authorized or 0}:{update.amount_captured or 0}:{update.amount_refunded or 0}"
    return f"fact:{before}>{update.status}:{amounts}"


async def sync_order_status(order: Order, actor: Actor, uow: UnitOfWork) -> None:
    """Re-derive a locked order's status after its payments' amounts changed (refunds)."""
    await _sync_order_status(order, actor, uow)


def derive_order_status(order: Order, payments: list[Payment]) -> OrderStatus:
    """The order's status as a function of its payments; CANCELED is the only sticky manual state."""
    if order.status in (O.CANCELED, O.DISPUTED):
        return OrderStatus(order.status)
    return _status_from_payments(payments)


def _status_from_payments(payments: list[Payment]) -> OrderStatus:
    captured = sum(p.amount_captured for p in payments if p.status is P.PAID)
    if captured > 0:
        refunded = sum(p.amount_refunded for p in payments if p.status is P.PAID)
        if refunded >= captured:
            return O.REFUNDED
        return O.PARTIALLY_REFUNDED if refunded > 0 else O.PAID
    statuses = {p.status for p in payments}
    if P.AUTHORIZED in statuses:
        return O.AUTHORIZED
    if P.REQUIRES_ACTION in statuses:
        return O.REQUIRES_ACTION
    if statuses & {P.PENDING, P.PROCESSING}:
        return O.PROCESSING
    return O.PENDING


async def _sync_order_status(
    order: Order, actor: Actor, uow: UnitOfWork, payments: list[Payment] | None = None
) -> None:
    """`payments`: all of the locked order's payments when the caller has them, else read here."""
    if payments is None:
        payments = await payments_of(order, uow)
    after = derive_order_status(order, payments)
    before = order.status
    if after == before:
        return
    require_order_move(before, after)
    order.status = after
    await save_columns(order, ("status", "updated_at"), uow.connection)
    _audit(actor, f"order.{after.lower()}", "order", order.id, before, after, order, uow)
    uow.changes.append(StatusChange("order", order.id, order.id, before, after))
    if after is O.PAID:
        await add_message(uow, "receipt", f"receipt:{order.id}", {"order_id": str(order.id)})
        # Once per order, like the receipt: a failed refund that makes it PAID again is refund.failed.
        await merchant_events.announce(uow, merchant_events.ORDER_PAID, order, once=True)


def _audit(
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: UUID,
    before: str | None,
    after: str | None,
    entity: Payment | Order,
    uow: UnitOfWork,
) -> None:
    amount = entity.amount if isinstance(entity, Payment) else entity.total_amount
    record_audit(
        actor,
        action,
        entity_type,
        entity_id,
        before=before,
        after=after,
        amount=amount,
        currency=entity.currency,
        uow=uow,
    )
