"""Announcing a change to the merchant's endpoints: the event and its deliveries, written in the
transaction that makes the change.

The status writers (`db.transitions`, `db.refunds`, `db.disputes`, `db.subscriptions`) call
`announce` right where they write a status an event type names, with their unit of work: the event
commits with the change or not at all, so there is no lost event (a change committed without its
event) and no phantom one (an event for a change rolled back). Its deliveries are queued after the
commit, and the sweeper finds any whose job was lost.

An event is written only when some enabled endpoint subscribes to its type. Its envelope carries the
object's version, one more than the last version announced for that object (a counter row kept apart
from the events, so pruning never makes a version repeat), so a receiver can drop a stale event that
arrives after a newer one. Never here: a network call, or a commit of its own.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Final

from tortoise.exceptions import IntegrityError

from db.merchant_models import MerchantDelivery, MerchantEndpoint, MerchantEvent, MerchantObjectVersion
from db.merchant_payloads import Announceable, object_type, render
from db.row_reads import read_rows
from db.transaction import transaction
from db.unit_of_work import QueuedJob, UnitOfWork

API_VERSION: Final = "2026-12-01"
ALL_TYPES: Final = "*"
TEST_EVENT_TYPE: Final = "endpoint.test"
DELIVERY_JOB: Final = "deliver_merchant_webhook"

ORDER_PAID: Final = "order.paid"
ORDER_CANCELED: Final = "order.canceled"
PAYMENT_SUCCEEDED: Final = "payment.succeeded"
PAYMENT_FAILED: Final = "payment.failed"
PAYMENT_REQUIRES_ACTION: Final = "payment.requires_action"
REFUND_SUCCEEDED: Final = "refund.succeeded"
REFUND_FAILED: Final = "refund.failed"
DISPUTE_CREATED: Final = "dispute.created"
DISPUTE_CLOSED: Final = "dispute.closed"
SUBSCRIPTION_CREATED: Final = "subscription.created"
SUBSCRIPTION_UPDATED: Final = "subscription.updated"
SUBSCRIPTION_CANCELED: Final = "subscription.canceled"
INVOICE_PAID: Final = "invoice.paid"
INVOICE_PAYMENT_FAILED: Final = "invoice.payment_failed"

EVENT_TYPES: Final = (
    ORDER_PAID,
    ORDER_CANCELED,
    PAYMENT_SUCCEEDED,
    PAYMENT_FAILED,
    PAYMENT_REQUIRES_ACTION,
    REFUND_SUCCEEDED,
    REFUND_FAILED,
    DISPUTE_CREATED,
    DISPUTE_CLOSED,
    SUBSCRIPTION_CREATED,
    SUBSCRIPTION_UPDATED,
    SUBSCRIPTION_CANCELED,
    INVOICE_PAID,
    INVOICE_PAYMENT_FAILED,
)


def subscribes(endpoint: MerchantEndpoint, event_type: str) -> bool:
    types = endpoint.event_types or []
    return ALL_TYPES in types or event_type in types


def delivery_job(delivery_id: int) -> QueuedJob:
    return QueuedJob(DELIVERY_JOB, f"merchant-delivery:{delivery_id}", {"delivery_id": delivery_id})


def envelope(
    public_id: str, event_type: str, created: datetime, kind: str, object_id: str, version: int, data: dict[str, Any]
) -> str:
    """The JSON body every endpoint receives, byte for byte, on every attempt."""
    document = {
        "id": public_id,
        "type": event_type,
        "apiVersion": API_VERSION,
        "created": created.isoformat(),
        "object": kind,
        "objectId": object_id,
        "objectVersion": version,
        "data": data,
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


async def announce(uow: UnitOfWork, event_type: str, obj: Announceable, *, once: bool = False) -> MerchantEvent | None:
    """Write an event about `obj` (already saved in `uow`) and one delivery per subscribed endpoint.

    `once` makes the event unique per object and type (an order is paid once, even if a refund that
    failed makes it PAID again); otherwise every call is a new version. None when no endpoint wants
    it or, with `once`, it was announced already.
    """
    endpoints = [e for e in await _enabled_endpoints(uow) if subscribes(e, event_type)]
    if not endpoints:
        return None
    kind, object_id = object_type(obj), str(obj.pk)
    once_key = f"{event_type}:{object_id}"
    if once and await MerchantEvent.filter(dedupe_key=once_key).using_db(uow.connection).exists():
        return None
    version = await _next_version(uow, kind, object_id)
    public_id = f"evt_{uuid.uuid4().hex}"
    created = datetime.now(UTC)
    body = envelope(public_id, event_type, created, kind, object_id, version, await render(obj, uow.connection))
    try:
        # A savepoint: on PostgreSQL a failed INSERT must not abort the change being announced.
        async with transaction() as savepoint:
            event = await MerchantEvent.create(
                public_id=public_id,
                type=event_type,
                object_type=kind,
                object_id=object_id,
                object_version=version,
                dedupe_key=once_key if once else f"{once_key}:{version}",
                body=body,
                created_at=created,
                using_db=savepoint,
            )
    except IntegrityError:
        return None  # a concurrent transaction announced this once-only event first
    await _queue_deliveries(uow, event, endpoints)
    return event


_ENDPOINTS: Final = "merchant_events.endpoints"


async def _enabled_endpoints(uow: UnitOfWork) -> list[MerchantEndpoint]:
    """The enabled endpoints, read once per transaction (a paid checkout announces two events)."""
    if _ENDPOINTS not in uow.reads:
        uow.reads[_ENDPOINTS] = await read_rows(MerchantEndpoint, "enabled ORDER BY created_at", [], uow.connection)
    endpoints: list[MerchantEndpoint] = uow.reads[_ENDPOINTS]
    return endpoints


async def announce_test(uow: UnitOfWork, endpoint: MerchantEndpoint) -> MerchantEvent:
    """A test event for one endpoint, whatever types it subscribes to."""
    public_id = f"evt_{uuid.uuid4().hex}"
    created = datetime.now(UTC)
    data = {"endpointId": str(endpoint.id), "message": "A test event from PayQL."}
    body = envelope(public_id, TEST_EVENT_TYPE, created, "endpoint", str(endpoint.id), 0, data)
    event = await MerchantEvent.create(
        public_id=public_id,
        type=TEST_EVENT_TYPE,
        object_type="endpoint",
        object_id=str(endpoint.id),
        object_version=0,
        dedupe_key=f"{TEST_EVENT_TYPE}:{public_id}",
        body=body,
        created_at=created,
        using_db=uow.connection,
    )
    await _queue_deliveries(uow, event, [endpoint])
    return event


async def _queue_deliveries(uow: UnitOfWork, event: MerchantEvent, endpoints: list[MerchantEndpoint]) -> None:
    for endpoint in endpoints:
        delivery = await MerchantDelivery.create(event_id=event.id, endpoint_id=endpoint.id, using_db=uow.connection)
        uow.jobs.append(delivery_job(delivery.id))


async def _next_version(uow: UnitOfWork, kind: str, object_id: str) -> int:
    """One more than the object's last announced version. The object's own row is locked by the
    writer, and the counter row is locked here, so concurrent announcements get distinct versions."""
    for _ in range(2):
        row = (
            await MerchantObjectVersion.filter(object_type=kind, object_id=object_id)
            .using_db(uow.connection)
            .select_for_update()
            .first()
        )
        if row is not None:
            row.version += 1
            await row.save(using_db=uow.connection, update_fields=["version"])
            return int(row.version)
        try:
            async with transaction() as savepoint:
                await MerchantObjectVersion.create(object_type=kind, object_id=object_id, version=1, using_db=savepoint)
            return 1
        except IntegrityError:
            continue  # created concurrently: lock it and count on from there
    raise RuntimeError(f"no version counter for {kind} {object_id}")
