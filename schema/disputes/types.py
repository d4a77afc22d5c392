"""Dispute, note and fulfillment object types and the dispute payloads."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from db.models import Dispute, DisputeNote, Fulfillment, Order, Payment
from domain.statuses import DisputeStatus
from resolvers import disputes
from schema.types import Money, OrderType, PaymentType, UserError

DisputeStatusEnum = strawberry.enum(DisputeStatus, name="DisputeStatus")


@strawberry.type(name="DisputeNote")
class DisputeNoteType:
    id: strawberry.ID
    author: str
    body: str
    created_at: datetime

    @classmethod
    def from_model(cls, note: DisputeNote) -> DisputeNoteType:
        return cls(id=strawberry.ID(str(note.id)), author=note.author, body=note.body, created_at=note.created_at)


@strawberry.type(name="Fulfillment", description="A shipment the merchant recorded for an order.")
class FulfillmentType:
    id: strawberry.ID
    order_id: strawberry.ID
    carrier: str
    tracking_number: str
    shipped_at: datetime | None
    recorded_by: str
    created_at: datetime

    @classmethod
    def from_model(cls, row: Fulfillment) -> FulfillmentType:
        return cls(
            id=strawberry.ID(str(row.id)),
            order_id=strawberry.ID(str(row.order_id)),
            carrier=row.carrier,
            tracking_number=row.tracking_number,
            shipped_at=row.shipped_at,
            recorded_by=row.recorded_by,
            created_at=row.created_at,
        )


@strawberry.type(name="Dispute", description="A chargeback on one payment, and the evidence gathered for it.")
class DisputeType:
    id: strawberry.ID
    status: DisputeStatusEnum  # type: ignore[valid-type]
    reason: str
    amount: Money
    gateway: str
    gateway_reference: str
    evidence_due_by: datetime | None
    evidence: JSON = strawberry.field(description="Gathered when the dispute arrived; `submitted` once sent.")
    evidence_submitted_at: datetime | None
    due_soon: bool = strawberry.field(
        description="Flagged by the due-date check: evidence is due soon and was not submitted."
    )
    due_soon_flagged_at: datetime | None
    closed_at: datetime | None
    created_at: datetime
    payment_id: strawberry.Private[UUID]
    dispute_id: strawberry.Private[UUID]

    @strawberry.field
    async def notes(self) -> list[DisputeNoteType]:
        return [
            DisputeNoteType.from_model(n) for n in await DisputeNote.filter(dispute_id=self.dispute_id).order_by("id")
        ]

    @strawberry.field
    async def payment(self) -> PaymentType:
        return PaymentType.from_model(await Payment.get(id=self.payment_id))

    @strawberry.field
    async def order(self) -> OrderType:
        payment = await Payment.get(id=self.payment_id)
        return OrderType.from_model(await Order.get(id=payment.order_id))

    @strawberry.field(description="Shipments recorded for the disputed order, newest first.")
    async def fulfillments(self) -> list[FulfillmentType]:
        payment = await Payment.get(id=self.payment_id)
        return [FulfillmentType.from_model(f) for f in await disputes.fulfillments_of(payment.order_id)]

    @classmethod
    def from_model(cls, dispute: Dispute) -> DisputeType:
        flagged = dispute.due_soon_flagged_at is not None
        return cls(
            id=strawberry.ID(str(dispute.id)),
            status=dispute.status,
            reason=dispute.reason,
            amount=Money.of(dispute.amount, dispute.currency),
            gateway=dispute.gateway,
            gateway_reference=dispute.gateway_reference,
            evidence_due_by=dispute.evidence_due_by,
            evidence=dispute.evidence,
            evidence_submitted_at=dispute.evidence_submitted_at,
            due_soon=flagged and dispute.status is DisputeStatus.NEEDS_RESPONSE and not dispute.evidence_submitted_at,
            due_soon_flagged_at=dispute.due_soon_flagged_at,
            closed_at=dispute.closed_at,
            created_at=dispute.created_at,
            payment_id=dispute.payment_id,
            dispute_id=dispute.id,
        )


@strawberry.type
class DisputePayload:
    dispute: DisputeType | None
    user_errors: list[UserError]

    @classmethod
    def refused(cls, errors: list[UserError]) -> DisputePayload:
        return cls(dispute=None, user_errors=errors)


@strawberry.type
class FulfillmentPayload:
    order: OrderType | None
    fulfillments: list[FulfillmentType] = strawberry.field(description="All of the order's shipments, newest first.")
    user_errors: list[UserError]
