"""Inputs of the dispute mutations."""

from __future__ import annotations

from datetime import datetime

import strawberry


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
