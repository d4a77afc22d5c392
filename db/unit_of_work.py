"""One database transaction plus the status changes it made, announced only after it commits, and
the audit records it made, written together as its last statement before COMMIT.

Lock order inside a transaction, always: subscription → invoice → order → payment → refund or
dispute. A refund or a dispute is locked after its order and payment (`transitions.lock_under_payment`);
a subscription's invoices, and their orders and payments, after the subscription (`db/subscriptions.py`).
A customer row is only ever locked alone, in its own short transaction. Taking rows in one order
everywhere is what keeps concurrent checkouts, captures, webhooks, renewals and disputes from
deadlocking.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from tortoise.backends.base.client import BaseDBAsyncClient

from db.models import AuditRecord
from db.row_inserts import insert_rows
from db.transaction import transaction


@dataclass(frozen=True, slots=True)
class StatusChange:
    entity: str  # "order" | "payment" | "refund"
    entity_id: UUID
    order_id: UUID
    status_before: str | None
    status_after: str


@dataclass(frozen=True, slots=True)
class QueuedJob:
    """A job to enqueue once the transaction that wrote its row has committed (a webhook delivery)."""

    job: str
    key: str
    kwargs: dict[str, Any]


@dataclass(frozen=True, slots=True)
class CommittedWork:
    """What a committed transaction changed: status changes to announce, outbox rows to dispatch,
    jobs to enqueue. `created_orders`: orders the transaction inserted, whose changes no one can be
    listening for yet (an order's id leaves only with the answer of the request that made it)."""

    changes: list[StatusChange]
    outbox_ids: list[int]
    jobs: list[QueuedJob] = field(default_factory=list)
    created_orders: frozenset[UUID] = frozenset()


ChangeListener = Callable[[CommittedWork], Awaitable[None]]

_listeners: list[ChangeListener] = []


def add_change_listener(listener: ChangeListener) -> None:
    """Called once at start-up (pub/sub, outbox dispatch); listeners run after each commit that
    changed something. A listener must not raise: what it misses, the sweeper finds."""
    _listeners.append(listener)


def remove_change_listener(listener: ChangeListener) -> None:
    _listeners.remove(listener)


@dataclass
class UnitOfWork:
    connection: BaseDBAsyncClient
    changes: list[StatusChange] = field(default_factory=list)
    outbox_ids: list[int] = field(default_factory=list)
    jobs: list[QueuedJob] = field(default_factory=list)
    created_orders: set[UUID] = field(default_factory=set)
    # Made by `db.audit_trail.record_audit`; one INSERT for all of them as the transaction ends.
    audits: list[AuditRecord] = field(default_factory=list)
    # What a module reads once per transaction and uses several times (the merchant's endpoints,
    # for each event a payment and its order announce), by that module's own key.
    reads: dict[str, Any] = field(default_factory=dict)


@asynccontextmanager
async def unit_of_work() -> AsyncIterator[UnitOfWork]:
    async with transaction() as connection:
        uow = UnitOfWork(connection=connection)
        yield uow
        await insert_rows(uow.audits, connection)
    if uow.changes or uow.outbox_ids or uow.jobs:
        work = CommittedWork(list(uow.changes), list(uow.outbox_ids), list(uow.jobs), frozenset(uow.created_orders))
        for listener in list(_listeners):
            await listener(work)
