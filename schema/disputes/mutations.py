"""Dispute mutation fields: staff only, thin adapters over `resolvers.disputes`; refusals come back as userErrors."""

from __future__ import annotations

from uuid import UUID

import strawberry

from db.models import Dispute, Order
from resolvers import disputes
from schema.disputes.inputs import AddDisputeNoteInput, RecordFulfillmentInput, SubmitDisputeEvidenceInput
from schema.disputes.types import (
    DisputePayload,
    DisputeType,
    FulfillmentPayload,
    FulfillmentType,
)
from schema.errors import UserErrorsPayload, user_errors
from schema.types import GraphQLInfo, OrderType


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
