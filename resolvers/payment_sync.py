"""Bringing a payment up to what its gateway says: the one path from any payment fact to the database.

Every fact about a payment comes through `sync_payment`, whatever carried it: the gateway's answer to
our own call (a charge, a capture, a void, a payment check), a webhook effect, a reconciliation read,
a paid invoice, or a dispute. It locks the payment (its order first, the order `db.unit_of_work`
documents) and hands the fact to the one writer of what it changes: `db.transitions` for the
payment's status and amounts, `db.disputes` for a dispute. The state rules live there, not here.

Gateway calls (a re-read, completing an approved payment) happen before `sync_payment`, never inside
its transaction: a transaction never waits on the network. Nothing here decides who may see a payment.
"""

from __future__ import annotations

import uuid

from db import disputes, transitions
from db.models import EventSource, Payment
from db.transitions import Actor, PaymentChangeResult, PaymentUpdate
from db.unit_of_work import unit_of_work
from domain.log_context import bind_log_fields
from domain.statuses import CaptureMethod
from gateways.base import PaymentGateway
from gateways.types import DisputeResult, PaymentResult

# What can be said of a payment: a gateway's copy of it, a fact we normalized ourselves (a decline, a
# paid invoice, a payment the gateway never saw), or a dispute on it.
PaymentFact = PaymentResult | PaymentUpdate | DisputeResult


async def sync_payment(
    payment_id: uuid.UUID,
    fact: PaymentFact,
    *,
    source: EventSource,
    actor: Actor,
    dedupe_key: str | None = None,
) -> PaymentChangeResult:
    """Apply one fact to the payment, under its lock; `changed` is False for a stale or repeated fact.

    `dedupe_key` names the fact for the ledger (a webhook passes its event id); without it the fact
    names itself, so the same fact from two sources applies once."""
    bind_log_fields(payment_id=payment_id)
    async with unit_of_work() as uow:
        locked = await transitions.lock_payment_and_others(payment_id, uow)
        order, payment = locked.order, locked.payment
        if isinstance(fact, DisputeResult):
            changed = await disputes.apply_dispute_result(order, payment, fact, source=source, actor=actor, uow=uow)
            return PaymentChangeResult(changed, payment, order)
        update = fact if isinstance(fact, PaymentUpdate) else _update_from(fact)
        return await transitions.apply_payment_update(
            order, payment, update, source=source, actor=actor, dedupe_key=dedupe_key, uow=uow, others=locked.others
        )


async def complete_if_approved(gateway: PaymentGateway, payment: Payment, result: PaymentResult) -> PaymentResult:
    """Capture or authorize a payment the customer approved (PayPal), once: the key derives from
    our payment, so the SPA, the approval webhook and reconciliation all make the same call."""
    if not result.awaiting_completion:
        return result
    return await gateway.complete(
        result.reference,
        capture=payment.capture_method == CaptureMethod.AUTOMATIC,
        idempotency_key=f"{payment.idempotency_key}-complete",
    )


async def find_payment(gateway: str, fact: PaymentResult | DisputeResult) -> Payment | None:
    """Our payment that a gateway's copy of a payment or a dispute is about; None for one PayQL did not
    create (another integration on the same account)."""
    if isinstance(fact, DisputeResult):
        return await disputes.find_disputed_payment(gateway, fact)
    # By the id we sent in the gateway's metadata, else by the gateway's reference.
    if fact.payql_payment_id:
        found = await Payment.get_or_none(id=fact.payql_payment_id, gateway=gateway)
        if found is not None:
            return found
    return await Payment.get_or_none(gateway=gateway, gateway_reference=fact.reference)


def _update_from(result: PaymentResult) -> PaymentUpdate:
    return PaymentUpdate(
        status=result.status,
        gateway_reference=result.reference,
        amount_authorized=result.amount_authorized,
        amount_captured=result.amount_captured,
        amount_refunded=result.amount_refunded,
        next_action=result.next_action.to_json() if result.next_action else None,
        decline_code=result.decline_code,
        failure_message=result.decline_message,
        gateway_status=result.gateway_status,
    )
