"""Status transitions: the allowed moves for payments and orders, and `apply_payment_update` against
the database (stale facts ignored, one ledger event per real change, audit records, the order's
derived status, and change listeners that hear only committed changes)."""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from dataclasses import dataclass, field

import asyncpg
import pytest

from db.models import AuditRecord, Customer, EventSource, Order, Payment, PaymentEvent, PaymentEventType
from db.transitions import (
    ORDER_TRANSITIONS,
    PAYMENT_TRANSITIONS,
    Actor,
    IllegalTransition,
    PaymentChangeResult,
    PaymentUpdate,
    apply_payment_update,
    can_move_order,
    can_move_payment,
    lock_payment,
    lock_payment_and_others,
    require_order_move,
    require_payment_move,
)
from db.unit_of_work import (
    CommittedWork,
    StatusChange,
    add_change_listener,
    remove_change_listener,
    unit_of_work,
)
from domain.statuses import OrderStatus, PaymentStatus
from tests.backends import Backend

P = PaymentStatus
O = OrderStatus  # noqa: E741

# The allowed moves, written out independently of db/transitions.py: a change there must change this too.
PAYMENT_MOVES = """
PENDING         -> REQUIRES_ACTION PROCESSING AUTHORIZED PAID FAILED CANCELED
REQUIRES_ACTION -> PROCESSING AUTHORIZED PAID FAILED CANCELED
PROCESSING      -> REQUIRES_ACTION AUTHORIZED PAID FAILED CANCELED
AUTHORIZED      -> PAID CANCELED
PAID            ->
FAILED          -> AUTHORIZED PAID
CANCELED        ->
"""
ORDER_MOVES = """
PENDING            -> REQUIRES_ACTION PROCESSING AUTHORIZED PAID PARTIALLY_REFUNDED REFUNDED CANCELED
REQUIRES_ACTION    -> PENDING PROCESSING AUTHORIZED PAID PARTIALLY_REFUNDED REFUNDED CANCELED
PROCESSING         -> PENDING REQUIRES_ACTION AUTHORIZED PAID PARTIALLY_REFUNDED REFUNDED CANCELED
AUTHORIZED         -> PENDING PAID PARTIALLY_REFUNDED REFUNDED CANCELED
PAID               -> PARTIALLY_REFUNDED REFUNDED DISPUTED
PARTIALLY_REFUNDED -> PAID REFUNDED DISPUTED
REFUNDED           -> PAID PARTIALLY_REFUNDED DISPUTED
DISPUTED           -> PAID PARTIALLY_REFUNDED REFUNDED
CANCELED           ->
"""


def parse_moves(table: str) -> set[tuple[str, str]]:
    pairs = set()
    for line in table.strip().splitlines():
        before, _, afters = line.partition("->")
        pairs |= {(before.strip(), after) for after in afters.split()}
    return pairs


ALLOWED_PAYMENT = parse_moves(PAYMENT_MOVES)
ALLOWED_ORDER = parse_moves(ORDER_MOVES)
PAYMENT_PAIRS = list(itertools.product(PaymentStatus, repeat=2))
ORDER_PAIRS = list(itertools.product(OrderStatus, repeat=2))


def test_the_tables_cover_every_status() -> None:
    assert set(PAYMENT_TRANSITIONS) == set(PaymentStatus)
    assert set(ORDER_TRANSITIONS) == set(OrderStatus)
    assert {b for b, _ in ALLOWED_PAYMENT} | {a for _, a in ALLOWED_PAYMENT} == set(PaymentStatus)
    assert {b for b, _ in ALLOWED_ORDER} | {a for _, a in ALLOWED_ORDER} == set(OrderStatus)


@pytest.mark.parametrize(("before", "after"), PAYMENT_PAIRS, ids=[f"{b}->{a}" for b, a in PAYMENT_PAIRS])
def test_payment_moves(before: PaymentStatus, after: PaymentStatus) -> None:
    allowed = (before, after) in ALLOWED_PAYMENT
    assert can_move_payment(before, after) is allowed
    assert (after in PAYMENT_TRANSITIONS[before]) is allowed
    if allowed:
        require_payment_move(before, after)
    else:
        with pytest.raises(IllegalTransition) as caught:
            require_payment_move(before, after)
        assert str(caught.value) == f"payment cannot move from {before} to {after}"
        assert (caught.value.before, caught.value.after) == (before, after)


@pytest.mark.parametrize(("before", "after"), ORDER_PAIRS, ids=[f"{b}->{a}" for b, a in ORDER_PAIRS])
def test_order_moves(before: OrderStatus, after: OrderStatus) -> None:
    allowed = (before, after) in ALLOWED_ORDER
    assert can_move_order(before, after) is allowed
    assert (after in ORDER_TRANSITIONS[before]) is allowed
    if allowed:
        require_order_move(before, after)
    else:
        with pytest.raises(IllegalTransition) as caught:
            require_order_move(before, after)
        assert str(caught.value) == f"order cannot move from {before} to {after}"
        assert (caught.value.before, caught.value.after) == (before, after)


def test_illegal_transition_is_a_value_error() -> None:
    assert issubclass(IllegalTransition, ValueError)


# --- apply_payment_update against the database ---------------------------------------------------

pytestmark = pytest.mark.usefixtures("server")

AMOUNT = 2500
ACTOR = Actor("gateway:sandbox", request_id="req-123", source_ip="203.0.113.7", reason="webhook delivery")
# The order's status for an order whose only payment is in the given status (derive_order_status).
ORDER_FOR_PAYMENT = {
    P.PENDING: O.PROCESSING,
    P.REQUIRES_ACTION: O.REQUIRES_ACTION,
    P.PROCESSING: O.PROCESSING,
    P.AUTHORIZED: O.AUTHORIZED,
    P.PAID: O.PAID,
    P.FAILED: O.PENDING,
    P.CANCELED: O.PENDING,
}
EVENT_FOR_PAYMENT = {
    P.REQUIRES_ACTION: PaymentEventType.REQUIRES_ACTION,
    P.PROCESSING: PaymentEventType.PROCESSING,
    P.AUTHORIZED: PaymentEventType.AUTHORIZED,
    P.PAID: PaymentEventType.CAPTURED,
    P.FAILED: PaymentEventType.FAILED,
    P.CANCELED: PaymentEventType.VOIDED,
}


def update_to(status: PaymentStatus, **kwargs: object) -> PaymentUpdate:
    """What a gateway would say: amounts that match the status."""
    amounts: dict[str, object] = {}
    if status in (P.AUTHORIZED, P.PAID):
        amounts["amount_authorized"] = AMOUNT
    if status is P.PAID:
        amounts["amount_captured"] = AMOUNT
    if status is P.REQUIRES_ACTION:
        amounts["next_action"] = {"type": "REDIRECT", "redirect_url": "https://3ds.example/challenge"}
    if status is P.FAILED:
        amounts |= {"decline_code": "insufficient_funds", "failure_message": "Your card has insufficient funds."}
    return PaymentUpdate(status=status, gateway_status=status.lower(), **(amounts | kwargs))  # type: ignore[arg-type]


async def make_payment(status: PaymentStatus = P.PENDING) -> Payment:
    """A customer, an order and its one payment, already in `status` (amounts to match)."""
    customer = await Customer.create(external_id=f"customer-{uuid.uuid4().hex}")
    order = await Order.create(customer=customer, currency="EUR", total_amount=AMOUNT, status=ORDER_FOR_PAYMENT[status])
    return await add_payment(order, status)


async def add_payment(order: Order, status: PaymentStatus, **columns: object) -> Payment:
    """A payment of `order` in `status`, its amounts to match."""
    payment_id = uuid.uuid4()
    return await Payment.create(
        id=payment_id,
        order=order,
        gateway="sandbox",
        idempotency_key=f"payment-{payment_id}",
        payment_method="pm_card_visa",
        status=status,
        currency="EUR",
        amount=AMOUNT,
        amount_authorized=AMOUNT if status in (P.AUTHORIZED, P.PAID) else 0,
        amount_captured=AMOUNT if status is P.PAID else 0,
        **columns,
    )


async def apply(
    payment: Payment,
    update: PaymentUpdate,
    *,
    source: EventSource = EventSource.WEBHOOK,
    dedupe_key: str | None = None,
    actor: Actor = ACTOR,
) -> PaymentChangeResult:
    async with unit_of_work() as uow:
        order, locked = await lock_payment(payment.id, uow)
        return await apply_payment_update(
            order, locked, update, source=source, actor=actor, dedupe_key=dedupe_key, uow=uow
        )


@dataclass
class Trail:
    """What the database holds about one payment: its row, its order, its ledger and its audit."""

    payment: Payment
    order: Order
    events: list[PaymentEvent] = field(default_factory=list)
    payment_audits: list[AuditRecord] = field(default_factory=list)
    order_audits: list[AuditRecord] = field(default_factory=list)


async def trail(payment: Payment) -> Trail:
    row = await Payment.get(id=payment.id)
    order = await Order.get(id=row.order_id)
    return Trail(
        row,
        order,
        await PaymentEvent.filter(payment_id=row.id).order_by("id"),
        await AuditRecord.filter(entity_type="payment", entity_id=str(row.id)).order_by("id"),
        await AuditRecord.filter(entity_type="order", entity_id=str(order.id)).order_by("id"),
    )


STATUS_PAIRS = [(b, a) for b, a in PAYMENT_PAIRS if b != a]


@pytest.mark.parametrize(("before", "after"), STATUS_PAIRS, ids=[f"{b}->{a}" for b, a in STATUS_PAIRS])
async def test_apply_follows_the_table_and_derives_the_order(before: PaymentStatus, after: PaymentStatus) -> None:
    payment = await make_payment(before)
    result = await apply(payment, update_to(after))
    state = await trail(payment)
    if (before, after) not in ALLOWED_PAYMENT:
        assert result.changed is False
        assert state.payment.status is before
        assert state.order.status is ORDER_FOR_PAYMENT[before]
        assert state.events == state.payment_audits == state.order_audits == []
        return
    assert result.changed is True
    assert state.payment.status is after
    assert result.payment.status is after
    assert state.order.status is ORDER_FOR_PAYMENT[after]
    assert result.order.status is ORDER_FOR_PAYMENT[after]
    [event] = state.events
    assert (event.type, event.status_before, event.status_after) == (EVENT_FOR_PAYMENT[after], before, after)
    assert (event.source, event.currency) == (EventSource.WEBHOOK, "EUR")
    [audit] = state.payment_audits
    assert (audit.actor, audit.action) == ("gateway:sandbox", f"payment.{after.lower()}")
    assert (audit.status_before, audit.status_after) == (before, after)
    assert (audit.request_id, audit.source_ip, audit.reason) == ("req-123", "203.0.113.7", "webhook delivery")
    assert (audit.amount, audit.currency) == (AMOUNT, "EUR")
    order_moved = ORDER_FOR_PAYMENT[before] != ORDER_FOR_PAYMENT[after]
    assert [(a.status_before, a.status_after) for a in state.order_audits] == (
        [(ORDER_FOR_PAYMENT[before], ORDER_FOR_PAYMENT[after])] if order_moved else []
    )


@pytest.mark.parametrize("stale", [P.PENDING, P.PROCESSING, P.REQUIRES_ACTION])
async def test_paid_never_returns_to_an_earlier_status(stale: PaymentStatus) -> None:
    payment = await make_payment(P.PENDING)
    assert (await apply(payment, update_to(P.PAID), dedupe_key="evt_paid")).changed
    paid = await trail(payment)

    result = await apply(payment, update_to(stale), source=EventSource.API)
    late_webhook = await apply(payment, update_to(stale), dedupe_key=f"evt_late_{stale}")

    assert result.changed is False
    assert late_webhook.changed is False
    state = await trail(payment)
    assert state.payment.status is P.PAID
    assert state.payment.amount_captured == AMOUNT
    assert state.order.status is O.PAID
    assert [e.id for e in state.events] == [e.id for e in paid.events]
    assert [a.id for a in state.payment_audits] == [a.id for a in paid.payment_audits]
    assert [a.id for a in state.order_audits] == [a.id for a in paid.order_audits]


async def test_a_stale_update_changes_no_other_column() -> None:
    payment = await make_payment(P.PAID)
    result = await apply(payment, update_to(P.REQUIRES_ACTION, gateway_reference="pi_late"))
    assert not result.changed
    row = await Payment.get(id=payment.id)
    assert row.next_action is None
    assert row.gateway_reference is None
    assert row.updated_at == payment.updated_at


@pytest.mark.parametrize("status", [P.AUTHORIZED, P.PAID, P.FAILED, P.REQUIRES_ACTION])
async def test_the_same_fact_from_two_sources_writes_one_ledger_event(status: PaymentStatus) -> None:
    payment = await make_payment(P.PENDING)
    first = await apply(payment, update_to(status), source=EventSource.API)
    second = await apply(payment, update_to(status), source=EventSource.RECONCILIATION)
    third = await apply(payment, update_to(status), source=EventSource.API)
    assert (first.changed, second.changed, third.changed) == (True, False, False)
    state = await trail(payment)
    assert [(e.type, e.source) for e in state.events] == [(EVENT_FOR_PAYMENT[status], EventSource.API)]
    assert len(state.payment_audits) == 1


async def test_a_dedupe_key_given_twice_applies_once() -> None:
    payment = await make_payment(P.PENDING)
    first = await apply(payment, update_to(P.AUTHORIZED), dedupe_key="evt_1")
    again = await apply(payment, update_to(P.AUTHORIZED), dedupe_key="evt_1")
    # A redelivery of the same event id is ignored even when it now says more.
    reworded = await apply(payment, update_to(P.PAID), dedupe_key="evt_1")
    assert (first.changed, again.changed, reworded.changed) == (True, False, False)
    state = await trail(payment)
    assert state.payment.status is P.AUTHORIZED
    assert state.order.status is O.AUTHORIZED
    assert [(e.dedupe_key, e.type) for e in state.events] == [("evt_1", PaymentEventType.AUTHORIZED)]
    assert len(state.payment_audits) == 1


async def test_dedupe_keys_are_per_payment() -> None:
    one, two = await make_payment(), await make_payment()
    assert (await apply(one, update_to(P.PROCESSING), dedupe_key="evt_shared")).changed
    assert (await apply(two, update_to(P.PROCESSING), dedupe_key="evt_shared")).changed


async def test_authorize_then_capture_writes_the_ledger_and_audit_trail() -> None:
    payment = await make_payment(P.PENDING)
    capture_actor = Actor("admin:ops-1", request_id="req-capture", reason="shipped")

    await apply(payment, update_to(P.AUTHORIZED, gateway_reference="pi_123"), source=EventSource.API)
    await apply(payment, update_to(P.PAID), source=EventSource.ADMIN, actor=capture_actor, dedupe_key="capture-1")

    state = await trail(payment)
    assert state.payment.status is P.PAID
    assert state.payment.gateway_reference == "pi_123"
    assert (state.payment.amount_authorized, state.payment.amount_captured) == (AMOUNT, AMOUNT)
    assert [(e.type, e.status_before, e.status_after, e.amount, e.source) for e in state.events] == [
        (PaymentEventType.AUTHORIZED, P.PENDING, P.AUTHORIZED, AMOUNT, EventSource.API),
        (PaymentEventType.CAPTURED, P.AUTHORIZED, P.PAID, AMOUNT, EventSource.ADMIN),
    ]
    assert [(a.actor, a.action, a.status_before, a.status_after) for a in state.payment_audits] == [
        ("gateway:sandbox", "payment.authorized", "PENDING", "AUTHORIZED"),
        ("admin:ops-1", "payment.paid", "AUTHORIZED", "PAID"),
    ]
    assert [(a.actor, a.action, a.status_before, a.status_after) for a in state.order_audits] == [
        ("gateway:sandbox", "order.authorized", "PROCESSING", "AUTHORIZED"),
        ("admin:ops-1", "order.paid", "AUTHORIZED", "PAID"),
    ]
    assert state.order_audits[1].request_id == "req-capture"
    assert state.order_audits[1].amount == AMOUNT


async def test_a_further_capture_without_a_status_change_is_a_real_change() -> None:
    payment = await make_payment(P.AUTHORIZED)
    assert (await apply(payment, update_to(P.PAID, amount_captured=1000))).changed
    assert (await apply(payment, update_to(P.PAID, amount_captured=2500))).changed
    assert not (await apply(payment, update_to(P.PAID, amount_captured=2500))).changed
    # A read that reports less than we know was captured never lowers the amount.
    assert not (await apply(payment, update_to(P.PAID, amount_captured=1000))).changed
    state = await trail(payment)
    assert state.payment.amount_captured == 2500
    assert [(e.type, e.status_before, e.status_after, e.amount) for e in state.events] == [
        (PaymentEventType.CAPTURED, P.AUTHORIZED, P.PAID, 1000),
        (PaymentEventType.CAPTURED, P.PAID, P.PAID, 1500),
    ]
    assert len(state.payment_audits) == 2
    assert sum(e.amount for e in state.events if e.type is PaymentEventType.CAPTURED) == 2500


async def test_a_failure_keeps_the_decline_and_frees_the_order_for_a_new_payment() -> None:
    payment = await make_payment(P.REQUIRES_ACTION)
    await apply(payment, update_to(P.FAILED))
    state = await trail(payment)
    assert state.payment.status is P.FAILED
    assert (state.payment.decline_code, state.payment.next_action) == ("insufficient_funds", None)
    assert state.order.status is O.PENDING


async def test_the_order_follows_its_best_payment() -> None:
    failed = await make_payment(P.FAILED)
    order = await Order.get(id=failed.order_id)
    retry_id = uuid.uuid4()
    retry = await Payment.create(
        id=retry_id,
        order=order,
        gateway="sandbox",
        idempotency_key=f"payment-{retry_id}",
        payment_method="pm_card_mastercard",
        currency="EUR",
        amount=AMOUNT,
    )
    await apply(retry, update_to(P.AUTHORIZED))
    assert (await Order.get(id=order.id)).status is O.AUTHORIZED
    await apply(retry, update_to(P.PAID))
    assert (await Order.get(id=order.id)).status is O.PAID


async def test_a_late_success_counts_the_other_payments_locked_with_it() -> None:
    """A payment seen failed is later reported taken, while the order's other payment was paid and
    refunded: the order is partly refunded (two captures, one refund), not paid, because its status
    derives from every payment the lock read."""
    refunded = await make_payment(P.PAID)
    order = await Order.get(id=refunded.order_id)
    await Payment.filter(id=refunded.id).update(amount_refunded=AMOUNT)
    await Order.filter(id=order.id).update(status=O.REFUNDED)
    failed = await add_payment(order, P.FAILED, decline_code="card_declined")

    async with unit_of_work() as uow:
        locked = await lock_payment_and_others(failed.id, uow)
        assert (locked.payment.id, [p.id for p in locked.others]) == (failed.id, [refunded.id])
        result = await apply_payment_update(
            locked.order,
            locked.payment,
            update_to(P.PAID),
            source=EventSource.WEBHOOK,
            actor=ACTOR,
            uow=uow,
            others=locked.others,
        )
    assert result.changed
    assert (await Order.get(id=order.id)).status is O.PARTIALLY_REFUNDED


async def test_the_other_payments_are_locked_with_the_payment(backend: Backend) -> None:
    if not backend.is_postgres:
        pytest.skip(
            "row locks are PostgreSQL's (SQLite locks the whole database); proven with PAYQL_TEST_BACKEND=servers"
        )
    payment = await make_payment(P.FAILED)
    order = await Order.get(id=payment.order_id)
    sibling = await add_payment(order, P.FAILED, decline_code="card_declined")
    other = await asyncpg.connect(backend.database_url.replace("postgres://", "postgresql://", 1))
    try:
        async with unit_of_work() as uow:
            await lock_payment_and_others(payment.id, uow)
            with pytest.raises(asyncpg.LockNotAvailableError):
                await other.fetchval("SELECT id FROM payments WHERE id = $1 FOR UPDATE NOWAIT", sibling.id)
        assert await other.fetchval("SELECT id FROM payments WHERE id = $1 FOR UPDATE NOWAIT", sibling.id)
    finally:
        await other.close()


async def test_a_canceled_order_stays_canceled() -> None:
    payment = await make_payment(P.PENDING)
    await Order.filter(id=payment.order_id).update(status=O.CANCELED)
    assert (await apply(payment, update_to(P.FAILED))).changed
    state = await trail(payment)
    assert state.order.status is O.CANCELED
    assert state.order_audits == []


# --- change listeners -----------------------------------------------------------------------------


async def committed_status(backend: Backend, payment_id: uuid.UUID) -> str:
    """The payment's status as another connection sees it: only what has been committed."""
    if backend.is_postgres:
        connection = await asyncpg.connect(backend.database_url.replace("postgres://", "postgresql://", 1))
        try:
            status: str = await connection.fetchval("SELECT status FROM payments WHERE id = $1", payment_id)
        finally:
            await connection.close()
        return status
    with sqlite3.connect(backend.database_url.removeprefix("sqlite://")) as connection:
        (status,) = connection.execute("SELECT status FROM payments WHERE id = ?", (str(payment_id),)).fetchone()
    connection.close()
    return str(status)


class Recorder:
    def __init__(self, backend: Backend, payment: Payment) -> None:
        self.backend = backend
        self.payment = payment
        self.calls: list[list[StatusChange]] = []
        self.seen_status: list[str] = []

    async def __call__(self, work: CommittedWork) -> None:
        mine = [c for c in work.changes if self.payment.order_id == c.order_id]
        if mine:
            self.calls.append(mine)
            self.seen_status.append(await committed_status(self.backend, self.payment.id))


async def test_listeners_hear_committed_changes_once(backend: Backend) -> None:
    payment = await make_payment(P.PENDING)
    recorder = Recorder(backend, payment)
    add_change_listener(recorder)
    try:
        await apply(payment, update_to(P.AUTHORIZED))
        await apply(payment, update_to(P.AUTHORIZED), source=EventSource.API)  # nothing new
    finally:
        remove_change_listener(recorder)
    assert recorder.calls == [
        [
            StatusChange("payment", payment.id, payment.order_id, P.PENDING, P.AUTHORIZED),
            StatusChange("order", payment.order_id, payment.order_id, O.PROCESSING, O.AUTHORIZED),
        ]
    ]
    assert recorder.seen_status == ["AUTHORIZED"]


async def test_listeners_are_not_called_for_a_stale_update(backend: Backend) -> None:
    payment = await make_payment(P.PAID)
    recorder = Recorder(backend, payment)
    add_change_listener(recorder)
    try:
        await apply(payment, update_to(P.PROCESSING))
    finally:
        remove_change_listener(recorder)
    assert recorder.calls == []


class Boom(Exception):
    pass


async def test_a_rolled_back_transaction_changes_nothing_and_calls_no_listener(backend: Backend) -> None:
    payment = await make_payment(P.PENDING)
    recorder = Recorder(backend, payment)
    add_change_listener(recorder)
    try:
        with pytest.raises(Boom):
            async with unit_of_work() as uow:
                order, locked = await lock_payment(payment.id, uow)
                result = await apply_payment_update(
                    order, locked, update_to(P.PAID), source=EventSource.WEBHOOK, actor=ACTOR, uow=uow
                )
                assert result.changed
                assert len(uow.changes) == 2
                raise Boom
    finally:
        remove_change_listener(recorder)
    assert recorder.calls == []
    state = await trail(payment)
    assert state.payment.status is P.PENDING
    assert state.payment.amount_captured == 0
    assert state.order.status is O.PROCESSING
    assert state.events == state.payment_audits == state.order_audits == []
    # The fact was never recorded, so it still applies afterwards.
    assert (await apply(payment, update_to(P.PAID))).changed
