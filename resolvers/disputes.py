"""Disputes for merchant staff: listing them by evidence due date, recording fulfillments and notes,
and submitting the evidence through the gateway adapter.

Staff only, every one. Evidence is submitted at most once: refused when it was already submitted or
the dispute is closed. The gateway is called with no transaction open; its answer is applied by
`db.disputes`, which writes the audit records (with the caller's request id and source address).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime

from db import dispute_evidence, disputes
from db.idempotency import Claim, save_recovery_point
from db.models import Dispute, DisputeNote, Fulfillment, Payment
from db.unit_of_work import unit_of_work
from domain.card_numbers import looks_like_card_number
from domain.statuses import DISPUTE_CLOSED, DisputeStatus
from gateways.base import PaymentGateway
from gateways.errors import GatewayError, GatewayUnavailable, NotSupported
from gateways.types import DisputeEvidence, DisputeResult
from resolvers.charging import resolve_gateway
from resolvers.context import Caller, Deps
from resolvers.errors import ErrorCode, UseCaseError
from resolvers.gateway_refusals import refusal_message
from resolvers.outcome import Disposition, Outcome, UserErrorData, run_idempotent
from resolvers.payments import load_owned_order, parse_id

MAX_PAGE = 200
MAX_NOTE_LENGTH = 5_000
MAX_EXTRA_TEXT = 5_000
MAX_FIELD_LENGTH = 100  # the carrier and tracking number columns
_EVIDENCE = "evidence submission"


@dataclass(frozen=True, slots=True)
class FulfillmentRequest:
    order_id: str
    carrier: str
    tracking_number: str
    shipped_at: datetime | None
    idempotency_key: str


async def list_disputes(
    caller: Caller, status: DisputeStatus | None, due_before: datetime | None, first: int
) -> list[Dispute]:
    """Soonest evidence due date first; disputes without a due date last."""
    caller.require_admin()
    if not 1 <= first <= MAX_PAGE:
        raise UseCaseError(ErrorCode.INVALID_INPUT, f"first must be 1 to {MAX_PAGE}.", "first")
    query = Dispute.all()
    if status is not None:
        query = query.filter(status=status)
    if due_before is not None:
        query = query.filter(evidence_due_by__lt=due_before)
    # Two queries rather than one ORDER BY: SQLite and PostgreSQL sort NULLs at opposite ends.
    dated = await query.filter(evidence_due_by__isnull=False).order_by("evidence_due_by", "id").limit(first)
    if len(dated) == first or due_before is not None:
        return dated
    undated = await query.filter(evidence_due_by__isnull=True).order_by("created_at", "id").limit(first - len(dated))
    return [*dated, *undated]


async def get_dispute(caller: Caller, dispute_id: str) -> Dispute:
    caller.require_admin()
    dispute = await Dispute.get_or_none(id=parse_id(dispute_id, "disputeId"))
    if dispute is None:
        raise UseCaseError(ErrorCode.NOT_FOUND, "No such dispute.", "disputeId")
    return dispute


async def record_fulfillment(deps: Deps, caller: Caller, request: FulfillmentRequest) -> Outcome:
    async def handler(_claim: Claim) -> Outcome:
        caller.require_admin()
        order = await load_owned_order(caller, request.order_id)
        carrier = _text(request.carrier, "carrier", MAX_FIELD_LENGTH)
        tracking = _text(request.tracking_number, "trackingNumber", MAX_FIELD_LENGTH)
        await disputes.record_fulfillment(order.id, carrier, tracking, request.shipped_at, caller.actor())
        return Outcome(order_id=order.id)

    fingerprint = {
        "order_id": request.order_id,
        "carrier": request.carrier,
        "tracking_number": request.tracking_number,
        "shipped_at": request.shipped_at.isoformat() if request.shipped_at else None,
    }
    return await run_idempotent(deps, caller, "recordFulfillment", request.idempotency_key, fingerprint, handler)


async def add_note(caller: Caller, dispute_id: str, body: str) -> DisputeNote:
    dispute = await get_dispute(caller, dispute_id)
    return await disputes.add_note(dispute.id, _text(body, "body", MAX_NOTE_LENGTH), caller.actor())


async def submit_evidence(
    deps: Deps, caller: Caller, dispute_id: str, extra_text: str, idempotency_key: str
) -> Outcome:
    async def handler(claim: Claim) -> Outcome:
        dispute = await get_dispute(caller, dispute_id)
        payment = await Payment.get(id=dispute.payment_id)
        outcome = Outcome(order_id=payment.order_id, payment_id=payment.id)
        gateway = resolve_gateway(deps, dispute.gateway)
        sent = claim.recovery_point.get("evidence")
        if sent is not None:
            # A copy of a request whose answer was lost: the gateway knows whether the evidence arrived
            # (its webhook may even have moved our mirror on already), so ask before sending it again.
            evidence = DisputeEvidence(**sent)
            try:
                arrived = await _gateway_copy(gateway, dispute)
            except GatewayError as unreadable:
                message = refusal_message(_EVIDENCE, unreadable, payment_id=dispute.payment_id)
                outcome.errors.append(UserErrorData(ErrorCode.GATEWAY_UNAVAILABLE, message))
                outcome.disposition = Disposition.RELEASE
                return outcome
            result = arrived if arrived is not None else await _send(gateway, dispute, evidence, outcome)
        else:
            _require_open_for_evidence(dispute)
            if len(extra_text) > MAX_EXTRA_TEXT:
                raise UseCaseError(ErrorCode.INVALID_INPUT, f"Write at most {MAX_EXTRA_TEXT} characters.", "extraText")
            evidence = await _evidence(dispute, payment, extra_text)
            async with unit_of_work() as uow:
                await save_recovery_point(claim, {"evidence": asdict(evidence)}, uow.connection)
            result = await _send(gateway, dispute, evidence, outcome)
        if result is None:
            return outcome
        # The text is evidence (personal data): sealed in the dispute's evidence, never in the plain audit trail.
        await disputes.record_evidence_submitted(dispute.id, result, evidence, caller.actor())
        return outcome

    fingerprint = {"dispute_id": dispute_id, "extra_text": extra_text}
    return await run_idempotent(deps, caller, "submitDisputeEvidence", idempotency_key, fingerprint, handler)


def _require_open_for_evidence(dispute: Dispute) -> None:
    if dispute.status in DISPUTE_CLOSED:
        raise UseCaseError(ErrorCode.INVALID_STATE, f"The dispute is closed ({dispute.status}).", "disputeId")
    if dispute.evidence_submitted_at is not None or dispute.status is not DisputeStatus.NEEDS_RESPONSE:
        raise UseCaseError(ErrorCode.INVALID_STATE, "Evidence was already submitted for this dispute.", "disputeId")


async def _evidence(dispute: Dispute, payment: Payment, extra_text: str) -> DisputeEvidence:
    notes = [dispute_evidence.note_json(n) for n in await DisputeNote.filter(dispute_id=dispute.id).order_by("id")]
    shipments = await dispute_evidence.fulfillments(payment.order_id)
    return dispute_evidence.gateway_evidence(dispute.evidence, shipments, notes, extra_text)


async def _send(
    gateway: PaymentGateway, dispute: Dispute, evidence: DisputeEvidence, outcome: Outcome
) -> DisputeResult | None:
    """The gateway's answer; None (with the error on `outcome`) when it is unknown."""
    try:
        return await gateway.submit_dispute_evidence(dispute.gateway_reference, evidence)
    except GatewayUnavailable as unavailable:
        # It may have arrived: the next copy of this request (same key) finds out.
        message = refusal_message(_EVIDENCE, unavailable, payment_id=dispute.payment_id)
        outcome.errors.append(UserErrorData(ErrorCode.GATEWAY_UNAVAILABLE, message))
        outcome.disposition = Disposition.RELEASE
        return None
    except NotSupported as unsupported:
        message = refusal_message(_EVIDENCE, unsupported, payment_id=dispute.payment_id)
        raise UseCaseError(ErrorCode.NOT_SUPPORTED, message) from None
    except GatewayError as refused:
        message = refusal_message(_EVIDENCE, refused, payment_id=dispute.payment_id)
        raise UseCaseError(ErrorCode.INVALID_STATE, message, "disputeId") from None


async def _gateway_copy(gateway: PaymentGateway, dispute: Dispute) -> DisputeResult | None:
    """The gateway's dispute when it shows evidence arrived (no longer NEEDS_RESPONSE), else None."""
    try:
        result = await gateway.retrieve_dispute(dispute.gateway_reference)
    except NotSupported:
        # A gateway with no dispute read (Adyen) cannot say: the same evidence is sent again, which such an
        # adapter must make idempotent at the gateway (Adyen's replays its Idempotency-Keys).
        return None
    return None if result.status is DisputeStatus.NEEDS_RESPONSE else result


def _text(value: str, field: str, limit: int) -> str:
    text = value.strip()
    if not text or len(text) > limit:
        raise UseCaseError(ErrorCode.INVALID_INPUT, f"Write 1 to {limit} characters.", field)
    if looks_like_card_number(text):
        raise UseCaseError(ErrorCode.INVALID_INPUT, "This looks like a card number; it is not stored.", field)
    return text


async def fulfillments_of(order_id: uuid.UUID) -> list[Fulfillment]:
    return await Fulfillment.filter(order_id=order_id).order_by("-created_at", "-id")
