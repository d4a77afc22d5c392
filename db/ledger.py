"""Proof that the books add up: for every payment, the append-only ledger sums to its stored amounts.

Captured = Σ CAPTURED; refunded = Σ REFUNDED - Σ REFUND_REVERSED; disputed = Σ DISPUTE_WITHDRAWN -
Σ DISPUTE_REINSTATED, which must equal the amounts of the payment's disputes not won (a dispute
withdraws its amount when it opens and a won one gives it back). Computed in grouped queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from tortoise.functions import Sum

from db.models import Dispute, Payment, PaymentEvent, PaymentEventType
from domain.statuses import DisputeStatus


@dataclass(frozen=True, slots=True)
class LedgerMismatch:
    payment_id: UUID
    stored_captured: int
    ledger_captured: int
    stored_refunded: int
    ledger_refunded: int
    stored_disputed: int = 0  # the amounts of the payment's disputes not won
    ledger_disputed: int = 0


async def ledger_mismatches(since: datetime | None = None) -> list[LedgerMismatch]:
    payments = Payment.all() if since is None else Payment.filter(created_at__gte=since)
    stored = {p.id: p for p in await payments.only("id", "amount_captured", "amount_refunded")}
    if not stored:
        return []
    rows = (
        await PaymentEvent.filter(
            payment_id__in=list(stored),
            type__in=[
                PaymentEventType.CAPTURED,
                PaymentEventType.REFUNDED,
                PaymentEventType.REFUND_REVERSED,
                PaymentEventType.DISPUTE_WITHDRAWN,
                PaymentEventType.DISPUTE_REINSTATED,
            ],
        )
        .annotate(total=Sum("amount"))
        .group_by("payment_id", "type")
        .values_list("payment_id", "type", "total")
    )
    sums: dict[tuple[UUID, str], int] = {(UUID(str(pid)), str(kind)): int(total or 0) for pid, kind, total in rows}
    disputed_rows = (
        await Dispute.filter(payment_id__in=list(stored))
        .exclude(status=DisputeStatus.WON)
        .annotate(total=Sum("amount"))
        .group_by("payment_id")
        .values_list("payment_id", "total")
    )
    stored_disputed = {UUID(str(pid)): int(total or 0) for pid, total in disputed_rows}
    mismatches = []
    for payment_id, payment in stored.items():
        captured = sums.get((payment_id, PaymentEventType.CAPTURED), 0)
        refunded = sums.get((payment_id, PaymentEventType.REFUNDED), 0) - sums.get(
            (payment_id, PaymentEventType.REFUND_REVERSED), 0
        )
        disputed = sums.get((payment_id, PaymentEventType.DISPUTE_WITHDRAWN), 0) - sums.get(
            (payment_id, PaymentEventType.DISPUTE_REINSTATED), 0
        )
        expected_disputed = stored_disputed.get(payment_id, 0)
        if (captured, refunded, disputed) != (payment.amount_captured, payment.amount_refunded, expected_disputed):
            mismatches.append(
                LedgerMismatch(
                    payment_id,
                    payment.amount_captured,
                    captured,
                    payment.amount_refunded,
                    refunded,
                    expected_disputed,
                    disputed,
                )
            )
    return mismatches


async def ledger_net_captured(payment_id: UUID) -> int:
    """What the merchant keeps of one payment by the ledger: captured - refunded - disputed."""
    signs = {
        PaymentEventType.CAPTURED: 1,
        PaymentEventType.REFUNDED: -1,
        PaymentEventType.REFUND_REVERSED: 1,
        PaymentEventType.DISPUTE_WITHDRAWN: -1,
        PaymentEventType.DISPUTE_REINSTATED: 1,
    }
    rows = (
        await PaymentEvent.filter(payment_id=payment_id, type__in=list(signs))
        .annotate(total=Sum("amount"))
        .group_by("type")
        .values_list("type", "total")
    )
    return sum(signs[PaymentEventType(str(kind))] * int(total or 0) for kind, total in rows)
