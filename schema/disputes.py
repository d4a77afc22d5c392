"""Dispute fields for merchant staff: `DisputeQuery` and `DisputeMutation`, merged into the root types.

Thin adapters over `resolvers.disputes`; the gathered evidence is exposed as JSON, as it was stored.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import strawberry
from strawberry.scalars import JSON

from db.models import Dispute, DisputeNote, Fulfillment, Order, Payment
from domain.statuses import DisputeStatus
from resolvers import disputes
from schema.errors import PublicErrors, UserErrorsPayload, user_errors
from schema.types import GraphQLInfo, Money, OrderType, PaymentType, UserError

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


@strawberry.input
class RecordFulfillmentInput:
    order_id: strawberry.ID
    carrier: str
    tracking_number: str
    shipped_at: datetime | None = None
    idempotency_key: str


@strawberry.input
class AddDisputeNoteInput:
    dispute_id: strawberry.ID
    body: str


@strawberry.input
class SubmitDisputeEvidenceInput:
    dispute_id: strawberry.ID
    idempotency_key: str
    extra_text: str = strawberry.field(default="", description="Added to the gathered evidence as free text.")


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


@strawberry.type
class DisputeQuery:
    @strawberry.field(
        description="Staff only: disputes, the soonest evidence due date first.", extensions=[PublicErrors()]
    )
    async def disputes(
        self,
        info: GraphQLInfo,
        status: DisputeStatusEnum | None = None,  # type: ignore[valid-type]
        due_before: datetime | None = None,
        first: int = 50,
    ) -> list[DisputeType]:
        rows = await disputes.list_disputes(
            info.context.caller, DisputeStatus(status) if status else None, due_before, first
        )
        return [DisputeType.from_model(d) for d in rows]

    @strawberry.field(
        description="Staff only: one dispute with its evidence, notes, order and payment.", extensions=[PublicErrors()]
    )
    async def dispute(self, info: GraphQLInfo, id: strawberry.ID) -> DisputeType:
        return DisputeType.from_model(await disputes.get_dispute(info.context.caller, str(id)))


@strawberry.type
class DisputeMutation:
    @strawberry.mutation(description="Staff only: record a shipment (carrier and tracking number) for an order.")
    async def record_fulfillment(self, info: GraphQLInfo, input: RecordFulfillmentInput) -> FulfillmentPayload:
        request = disputes.FulfillmentRequest(
            order_id=str(input.order_id),
            carrier=input.carrier,
            tracking_number=input.tracking_number,
            shipped_at=input.shipped_at,
            idempotency_key=input.idempotency_key,
        )
        outcome = await disputes.record_fulfillment(info.context.deps, info.context.caller, request)
        order = await Order.get_or_none(id=outcome.order_id) if outcome.order_id else None
        shipments = await disputes.fulfillments_of(order.id) if order else []
        return FulfillmentPayload(
            order=OrderType.from_model(order) if order else None,
            fulfillments=[FulfillmentType.from_model(f) for f in shipments],
            user_errors=user_errors(outcome.errors),
        )

    @strawberry.mutation(
        description="Staff only: add a note to a dispute's evidence.",
        extensions=[UserErrorsPayload(DisputePayload.refused)],
    )
    async def add_dispute_note(self, info: GraphQLInfo, input: AddDisputeNoteInput) -> DisputePayload:
        note = await disputes.add_note(info.context.caller, str(input.dispute_id), input.body)
        return DisputePayload(dispute=DisputeType.from_model(await Dispute.get(id=note.dispute_id)), user_errors=[])

    @strawberry.mutation(
        description="Staff only: send the gathered evidence, notes and fulfillments to the gateway, once."
    )
    async def submit_dispute_evidence(self, info: GraphQLInfo, input: SubmitDisputeEvidenceInput) -> DisputePayload:
        outcome = await disputes.submit_evidence(
            info.context.deps, info.context.caller, str(input.dispute_id), input.extra_text, input.idempotency_key
        )
        dispute = None
        if outcome.payment_id is not None:
            dispute = await Dispute.get_or_none(id=UUID(str(input.dispute_id)))
        return DisputePayload(
            dispute=DisputeType.from_model(dispute) if dispute else None, user_errors=user_errors(outcome.errors)
        )
