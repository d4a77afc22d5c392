"""Reconciliation: the gateway's own records are the truth, read back server to server.

(a) Settle orphans: payments still in flight after a threshold are read from their gateway (by
reference, or by our payment id when the gateway's answer was lost) and moved to their true
state; a payment the gateway never saw fails, and unpaid orders past their expiry are canceled.
A refund whose answer was lost is sent again with its own idempotency key, so the gateway answers
the refund it already made (or makes the one staff asked for), never a second one.
(b) Compare our payments of a window with the gateway's list and report every discrepancy,
repairing what is a legal forward move. (c) Check that every payment's ledger sums to its stored
amounts. Every run leaves an audit record with its counts.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

from db import transitions
from db.ledger import ledger_mismatches
from db.models import AuditRecord, EventSource, Order, Payment, Refund
from db.transitions import Actor, PaymentUpdate
from db.unit_of_work import unit_of_work
from domain.dunning import BillingPolicy
from domain.statuses import PAYMENT_IN_FLIGHT, OrderStatus, PaymentStatus, RefundStatus
from gateways.errors import GatewayError, GatewayUnavailable, NotSupported
from gateways.registry import GatewayRegistry, UnknownGateway
from gateways.types import PaymentResult
from jobs.subscription_reconcile import reconcile_subscriptions
from resolvers.payment_sync import complete_if_approved, find_payment, sync_payment
from resolvers.refunds import apply_refund_result, refund_request

logger = logging.getLogger(__name__)

ACTOR = Actor(name="system:reconciliation", reason="reconciliation")


@dataclass(frozen=True, slots=True)
class Discrepancy:
    # missing_ours | missing_theirs | status_mismatch | amount_mismatch | ledger_mismatch | subscription_mismatch
    kind: str
    gateway: str
    reference: str | None
    payment_id: str | None  # the subscription id for a subscription_mismatch
    ours: str | None
    theirs: str | None


@dataclass
class ReconciliationReport:
    since: datetime
    settled: int = 0
    failed_unsent: int = 0
    expired_orders: int = 0
    repaired: int = 0
    checked: int = 0
    unreachable_gateways: list[str] = field(default_factory=list)
    # Gateways whose API has no way to list payments (they are settled by their signed events alone): not an
    # outage, so neither an alert nor a failed run.
    unlisted_gateways: list[str] = field(default_factory=list)
    discrepancies: list[Discrepancy] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        """Flat numbers for metrics and logs."""
        kinds = Counter(d.kind for d in self.discrepancies)
        return {
            "settled": self.settled,
            "failed_unsent": self.failed_unsent,
            "expired_orders": self.expired_orders,
            "repaired": self.repaired,
            "checked": self.checked,
            **{f"discrepancy_{kind}": count for kind, count in sorted(kinds.items())},
        }


async def _apply(payment: Payment, fact: PaymentResult | PaymentUpdate) -> bool:
    synced = await sync_payment(payment.id, fact, source=EventSource.RECONCILIATION, actor=ACTOR)
    return synced.changed


async def settle_orphans(gateways: GatewayRegistry, older_than: timedelta, report: ReconciliationReport) -> None:
    cutoff = datetime.now(UTC) - older_than
    for payment in await Payment.filter(status__in=list(PAYMENT_IN_FLIGHT), updated_at__lte=cutoff):
        try:
            gateway = gateways.get(payment.gateway)
            if payment.gateway_reference:
                result: PaymentResult | None = await gateway.retrieve(payment.gateway_reference)
            else:
                result = await gateway.find_payment(str(payment.id))
        except UnknownGateway:
            continue
        except GatewayError as error:
            logger.warning("reconciliation could not read payment %s: %s", payment.id, error.message)
            continue
        if result is None:
            # The gateway never saw it (we died before the call): nothing was charged.
            update = PaymentUpdate(
                status=PaymentStatus.FAILED, failure_message="The payment never reached the gateway."
            )
            if await _apply(payment, update):
                report.failed_unsent += 1
            continue
        try:
            result = await complete_if_approved(gateway, payment, result)
        except GatewayError as error:
            logger.warning("reconciliation could not complete payment %s: %s", payment.id, error.message)
            continue
        if await _apply(payment, result):
            report.settled += 1


async def settle_unanswered_refunds(
    gateways: GatewayRegistry, older_than: timedelta, report: ReconciliationReport
) -> None:
    """Refunds still PENDING without a gateway reference: the gateway's answer never reached us (a timeout,
    a crash), and no webhook told us since."""
    cutoff = datetime.now(UTC) - older_than
    unanswered = await Refund.filter(
        status=RefundStatus.PENDING, gateway_reference__isnull=True, updated_at__lte=cutoff
    ).prefetch_related("payment")
    for refund in unanswered:
        payment: Payment = refund.payment
        try:
            gateway = gateways.get(payment.gateway)
        except UnknownGateway:
            continue
        request = refund_request(payment, refund)
        try:
            result = await gateway.refund(request)
        except GatewayUnavailable as error:
            logger.warning("reconciliation could not resend refund %s: %s", refund.id, error.message)
            continue
        except GatewayError as refused:
            await apply_refund_result(
                refund.id, None, ACTOR, EventSource.RECONCILIATION, failure=f"Refused by the gateway: {refused.message}"
            )
            report.settled += 1
            continue
        await apply_refund_result(refund.id, result, ACTOR, EventSource.RECONCILIATION)
        report.settled += 1


async def expire_unpaid_orders(older_than: timedelta, report: ReconciliationReport) -> None:
    cutoff = datetime.now(UTC) - older_than
    for order in await Order.filter(status=OrderStatus.PENDING, created_at__lte=cutoff):
        async with unit_of_work() as uow:
            locked = await transitions.lock_order(order.id, uow)
            if await transitions.cancel_unpaid_order(locked, ACTOR, uow):
                report.expired_orders += 1


async def compare_with_gateways(gateways: GatewayRegistry, report: ReconciliationReport) -> None:
    since_epoch = int(report.since.timestamp())
    for name in gateways.names():
        gateway = gateways.get(name)
        try:
            theirs = await gateway.list_payments(since_epoch)
        except NotSupported:
            report.unlisted_gateways.append(name)
            continue
        except GatewayError as error:
            logger.warning("reconciliation could not list %s payments: %s", name, error.message)
            report.unreachable_gateways.append(name)
            continue
        ours = await Payment.filter(gateway=name, created_at__gte=report.since)
        by_id = {str(p.id): p for p in ours}
        by_reference = {p.gateway_reference: p for p in ours if p.gateway_reference}
        seen: set[str] = set()
        for result in theirs:
            report.checked += 1
            payment = by_id.get(result.payql_payment_id or "") or by_reference.get(result.reference)
            if payment is None:
                payment = await find_payment(name, result)
            if payment is None:
                report.discrepancies.append(
                    Discrepancy("missing_ours", name, result.reference, result.payql_payment_id, None, result.status)
                )
                continue
            seen.add(str(payment.id))
            await _compare_one(name, payment, result, report)
        for payment in ours:
            if str(payment.id) not in seen and payment.gateway_reference:
                report.discrepancies.append(
                    Discrepancy(
                        "missing_theirs", name, payment.gateway_reference, str(payment.id), payment.status, None
                    )
                )


async def _compare_one(gateway: str, payment: Payment, result: PaymentResult, report: ReconciliationReport) -> None:
    differs = payment.status != result.status or payment.amount_captured != result.amount_captured
    if differs and await _apply(payment, result):
        report.repaired += 1
        payment = await Payment.get(id=payment.id)
    reference = result.reference
    if payment.status != result.status:
        report.discrepancies.append(
            Discrepancy("status_mismatch", gateway, reference, str(payment.id), payment.status, result.status)
        )
    elif payment.amount_captured != result.amount_captured or payment.amount != result.amount.amount:
        ours = f"{payment.amount}/{payment.amount_captured} {payment.currency}"
        theirs = f"{result.amount.amount}/{result.amount_captured} {result.amount.currency}"
        report.discrepancies.append(Discrepancy("amount_mismatch", gateway, reference, str(payment.id), ours, theirs))


async def reconcile(
    gateways: GatewayRegistry,
    *,
    since: datetime,
    orphan_age: timedelta,
    order_expiry: timedelta,
    billing: BillingPolicy | None = None,
) -> ReconciliationReport:
    """With `billing` (the dunning policy repairs apply), subscriptions are reconciled too."""
    report = ReconciliationReport(since=since)
    await settle_orphans(gateways, orphan_age, report)
    await settle_unanswered_refunds(gateways, orphan_age, report)
    await expire_unpaid_orders(order_expiry, report)
    await compare_with_gateways(gateways, report)
    if billing is not None:
        for drift in await reconcile_subscriptions(gateways, billing):
            report.repaired += 1
            report.discrepancies.append(
                Discrepancy(
                    "subscription_mismatch",
                    drift.gateway,
                    drift.reference,
                    drift.subscription_id,
                    drift.ours,
                    drift.theirs,
                )
            )
    for mismatch in await ledger_mismatches(since):
        report.discrepancies.append(
            Discrepancy(
                "ledger_mismatch",
                "ledger",
                None,
                str(mismatch.payment_id),
                f"captured {mismatch.stored_captured}, refunded {mismatch.stored_refunded}",
                f"captured {mismatch.ledger_captured}, refunded {mismatch.ledger_refunded}",
            )
        )
    await AuditRecord.create(
        actor=ACTOR.name,
        action="reconciliation.run",
        entity_type="reconciliation",
        entity_id=since.isoformat()[:64],
        reason="periodic reconciliation",
        data={"counts": report.counts(), "discrepancies": [asdict(d) for d in report.discrepancies][:200]},
    )
    logger.info("reconciliation: %s", report.counts())
    return report
