"""Refunding a payment and canceling an order (which refunds or voids what was paid).

Staff only. The refund row is committed PENDING before the gateway is called, with a gateway
idempotency key derived from its id; the gateway's answer (or a later webhook) moves it. An
authorized, uncaptured payment is voided, never refunded.
"""

from __future__ import annotations

import uuid

from db import refunds, transitions
from db.idempotency import Claim, save_recovery_point
from db.models import EventSource, Fulfillment, Payment, Refund
from db.transitions import Actor
from db.unit_of_work import unit_of_work
from domain.cancel_policy import CancelPolicy, CapturedOnCancel
from domain.log_context import bind_log_fields
from domain.money import Money
from domain.statuses import PaymentStatus, RefundStatus
from gateways.errors import GatewayError, GatewayUnavailable
from gateways.retrying import unanswered, with_retries
from gateways.types import RefundRequest, RefundResult, VoidRequest
from resolvers.charging import resolve_gateway
from resolvers.context import Caller, Deps
from resolvers.errors import ErrorCode, UseCaseError
from resolvers.gateway_refusals import refusal_message
from resolvers.outcome import Disposition, Outcome, UserErrorData, run_idempotent
from resolvers.payments import call_and_apply, load_owned_order, load_owned_payment


async def refund_payment(
    deps: Deps, caller: Caller, payment_id: str, amount: int | None, reason: str, idempotency_key: str
) -> Outcome:
    async def handler(claim: Claim) -> Outcome:
        caller.require_admin()
        resumed = claim.recovery_point.get("refund_id")
        if resumed is not None:
            return await send_refund(deps, caller, await Refund.get(id=resumed))
        payment = await load_owned_payment(caller, payment_id)
        if payment.status is PaymentStatus.AUTHORIZED:
            return await _void(deps, caller, payment, f"{payment.idempotency_key}-void-{claim.record_id}")
        refund = await _create(payment, amount, reason, caller, claim)
        return await send_refund(deps, caller, refund)

    fingerprint = {"payment_id": payment_id, "amount": amount, "reason": reason}
    return await run_idempotent(deps, caller, "refundPayment", idempotency_key, fingerprint, handler)


async def cancel_order(deps: Deps, caller: Caller, order_id: str, reason: str, idempotency_key: str) -> Outcome:
    """Cancel an unpaid order; refund (or void) a paid one in full. Safe to double-click."""

    async def handler(claim: Claim) -> Outcome:
        caller.require_admin()
        order = await load_owned_order(caller, order_id)
        payments = await Payment.filter(order_id=order.id).order_by("created_at")
        refuse_by_policy(deps.policy.cancel, payments, await Fulfillment.exists(order_id=order.id))
        outcome = Outcome(order_id=order.id)
        for payment in payments:
            if payment.status is PaymentStatus.AUTHORIZED:
                voided = await _void(deps, caller, payment, f"{payment.idempotency_key}-void-{claim.record_id}")
                outcome.errors += voided.errors
            elif payment.status is PaymentStatus.PAID:
                async with unit_of_work() as uow:
                    locked_order, locked = await transitions.lock_payment(payment.id, uow)
                    if await refunds.refundable_amount(locked, uow) <= 0:
                        continue
                    refund = await refunds.create_refund(locked_order, locked, None, reason, caller.actor(reason), uow)
                sent = await send_refund(deps, caller, refund)
                outcome.refund_id = sent.refund_id
                outcome.errors += sent.errors
                if sent.disposition is Disposition.RELEASE:
                    outcome.disposition = Disposition.RELEASE
        async with unit_of_work() as uow:
            locked_order = await transitions.lock_order(order.id, uow)
            await transitions.cancel_unpaid_order(locked_order, caller.actor(reason), uow)
        return outcome

    fingerprint = {"order_id": order_id, "reason": reason}
    return await run_idempotent(deps, caller, "cancelOrder", idempotency_key, fingerprint, handler)


def refuse_by_policy(policy: CancelPolicy, payments: list[Payment], fulfilled: bool) -> None:
    """Refuse, before anything moves, a cancel the merchant's policy does not allow."""
    if fulfilled and not policy.allow_after_fulfillment:
        raise UseCaseError(
            ErrorCode.INVALID_STATE, "This order has shipped: refund its payment once the goods are back."
        )
    captured = any(p.status is PaymentStatus.PAID and p.amount_captured > p.amount_refunded for p in payments)
    if captured and policy.captured is CapturedOnCancel.REFUSE:
        raise UseCaseError(ErrorCode.INVALID_STATE, "This order is paid: refund it with refundPayment.")


async def _create(payment: Payment, amount: int | None, reason: str, caller: Caller, claim: Claim) -> Refund:
    async with unit_of_work() as uow:
        order, locked = await transitions.lock_payment(payment.id, uow)
        try:
            refund = await refunds.create_refund(order, locked, amount, reason, caller.actor(reason), uow)
        except refunds.RefundNotAllowed as refused:
            raise UseCaseError(ErrorCode.INVALID_INPUT, str(refused), "amount") from None
        await save_recovery_point(claim, {"refund_id": str(refund.id)}, uow.connection)
    return refund


async def send_refund(deps: Deps, caller: Caller, refund: Refund) -> Outcome:
    payment = await Payment.get(id=refund.payment_id)
    bind_log_fields(order_id=payment.order_id, payment_id=payment.id, refund_id=refund.id)
    outcome = Outcome(order_id=payment.order_id, payment_id=payment.id, refund_id=refund.id)
    if refund.status is not RefundStatus.PENDING:
        return outcome
    gateway = resolve_gateway(deps, payment.gateway)
    request = refund_request(payment, refund)
    try:
        # Retried with the refund's own key: the gateway answers a repeat with the first refund.
        result = await with_retries(deps.gateways.retries, lambda: gateway.refund(request), retryable=unanswered)
    except GatewayUnavailable as unavailable:
        message = refusal_message("refund", unavailable, payment_id=payment.id)
        outcome.errors.append(UserErrorData(ErrorCode.GATEWAY_UNAVAILABLE, message))
        outcome.disposition = Disposition.RELEASE
        return outcome
    except GatewayError as refused:
        message = refusal_message("refund", refused, payment_id=payment.id)
        await apply_refund_result(refund.id, None, caller.actor(), EventSource.API, failure=message)
        outcome.errors.append(UserErrorData(ErrorCode.INVALID_STATE, message, "amount"))
        return outcome
    await apply_refund_result(refund.id, result, caller.actor(), EventSource.API)
    return outcome


def refund_request(payment: Payment, refund: Refund) -> RefundRequest:
    """What the gateway is sent for `refund`, the same on every attempt (its key derives from the refund)."""
    return RefundRequest(
        reference=payment.gateway_reference or "",
        amount=Money(refund.amount, refund.currency),
        idempotency_key=refund.idempotency_key,
        reason=refund.reason,
    )


async def apply_refund_result(
    refund_id: uuid.UUID, result: RefundResult | None, actor: Actor, source: EventSource, failure: str | None = None
) -> None:
    async with unit_of_work() as uow:
        order, payment, refund = await refunds.lock_refund(refund_id, uow)
        await refunds.apply_refund_status(
            order,
            payment,
            refund,
            result.status if result else RefundStatus.FAILED,
            source=source,
            actor=actor,
            uow=uow,
            gateway_reference=result.reference if result else None,
            failure_reason=(result.failure_reason if result else None) or failure,
        )


async def _void(deps: Deps, caller: Caller, payment: Payment, key: str) -> Outcome:
    gateway = resolve_gateway(deps, payment.gateway)
    request = VoidRequest(reference=payment.gateway_reference or "", idempotency_key=key)
    return await call_and_apply(payment, caller, "void", lambda: gateway.void(request), retries=deps.gateways.retries)
