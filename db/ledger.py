"""Proof that the books add up: for every payment, the append-only ledger sums to its stored amounts.

Captured = Σ CAPTURED; refunded = Σ REFUNDED - Σ REFUND_REVERSED. Computed in one grouped query.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from tortoise.functions import Sum

from db.models import Payment, PaymentEvent, PaymentEventType


@dataclass(frozen=True, slots=True)
class LedgerMismatch:
    payment_id: UUID
    stored_captured: int
    ledger_captured: int
    stored_refunded: int
    ledger_refunded: int


async def ledger_mismatches(since: datetime | None = None) -> list[LedgerMismatch]:
    payments = Payment.all() if since is None else Payment.filter(created_at__gte=since)
    stored = {p.id: p for p in await payments.only("id", "amount_captured", "amount_refunded")}
    if not stored:
        return []
    rows = (
        await PaymentEvent.filter(
            payment_id__in=list(stored),
            type__in=[PaymentEventType.CAPTURED, PaymentEventType.REFUNDED, PaymentEventType.REFUND_REVERSED],
        )
        .annotate(total=Sum("amount"))
        .group_by("payment_id", "type")
        .values_list("payment_id", "type", "total")
    )
    sums: dict[tuple[UUID, str], int] = {(UUID(str(pid)), str(kind)): int(total or 0) for pid, kind, total in rows}
    mismatches = []
    for payment_id, payment in stored.items():
        captured = sums.get((payment_id, PaymentEventType.CAPTURED), 0)
        refunded = sums.get((payment_id, PaymentEventType.REFUNDED), 0) - sums.get(
            (payment_id, PaymentEventType.REFUND_REVERSED), 0
        )
        if (captured, refunded) != (payment.amount_captured, payment.amount_refunded):
            mismatches.append(
                LedgerMismatch(payment_id, payment.amount_captured, captured, payment.amount_refunded, refunded)
            )
    return mismatches
