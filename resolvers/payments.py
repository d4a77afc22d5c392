"""Paying an existing order again, capturing, voiding and re-reading payments.

Capture and void are for merchant staff. `complete_payment` asks the gateway (server to server)
what happened after a customer action; the customer's redirect itself proves nothing.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from tortoise import connections

from db import transitions
from db.idempotency import Claim
from db.models import EventSource, Order, Payment
from db.row_reads import read_rows_with
from db.unit_of_work import unit_of_work
from domain.money import Money
from domain.statuses import CaptureMethod, PaymentStatus
from gateways.errors import GatewayError, GatewayUnavailable, ShopperReturnRejected
from gateways.retrying import RetryPolicy, unanswered, with_retries
from gateways.shopper_return import ShopperReturnGateway
from gateways.types import CaptureRequest, PaymentResult, VoidRequest
from resolvers.charging import (
    PaymentChoice,
    charge_routed,
    create_payment,
    remember_payment,
    resolve_gateway,
    resume_or_charge,
    routed_gateways,
    validated_choice,
)
from resolvers.context import Caller, Deps
from resolvers.errors import ErrorCode, UseCaseError
from resolvers.gateway_refusals import refusal_message
from resolvers.outcome import Disposition, Outcome, UserErrorData, run_idempotent
from resolvers.payment_sync import complete_if_approved, sync_payment
from resolvers.single_flight import SingleFlight

logger = logging.getLogger(__name__)


def parse_id(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise UseCaseError(ErrorCode.NOT_FOUND, "Not found.", field) from None


async def load_owned_order(caller: Caller, order_id: str) -> Order:
    """The order if the caller may see it; someone else's order is reported as not found."""
    principal = caller.require_principal()
    # Written out (`db.row_reads`) rather than built by the ORM's query builder for each call: every
    # live subscription to an order starts here, and thousands may subscribe at once after a deploy.
    orders = await read_rows_with(
        Order, "customer", '"orders"."id" = $1', [parse_id(order_id, "orderId")], connections.get("default")
    )
    order = orders[0] if orders else None
    if order is None or (not principal.is_admin and order.customer.external_id != principal.subject):
        raise UseCaseError(ErrorCode.NOT_FOUND, "No such order.", "orderId")
    return order


async def load_owned_payment(caller: Caller, payment_id: str) -> Payment:
    principal = caller.require_principal()
    payment = await Payment.get_or_none(id=parse_id(payment_id, "paymentId")).select_related("order__customer")
    if payment is None or (not principal.is_admin and payment.order.customer.external_id != principal.subject):
        raise UseCaseError(ErrorCode.NOT_FOUND, "No such payment.", "paymentId")
    return payment


@dataclass(frozen=True, slots=True)
class PayOrderRequest:
    order_id: str
    choice: PaymentChoice
    idempotency_key: str


async def pay_order(deps: Deps, caller: Caller, request: PayOrderRequest) -> Outcome:
    async def handler(claim: Claim) -> Outcome:
        resumed = await resume_or_charge(claim, deps, caller)
        if resumed is not None:
            return resumed
        order = await load_owned_order(caller, request.order_id)
        gateways = routed_gateways(deps, order.currency, request.choice)
        choice = validated_choice(gateways[0], request.choice, order.return_url)
        async with unit_of_work() as uow:
            locked = await transitions.lock_order(order.id, uow)
            payment = await create_payment(locked, choice, caller, uow)
            await remember_payment(claim, payment, uow)
        return await charge_routed(locked, payment, gateways, request.choice, caller, claim, deps.gateways)

    fingerprint = {
        "order_id": request.order_id,
        "gateway": request.choice.gateway,
        "payment_method": request.choice.payment_method,
        "capture_method": str(request.choice.capture_method),
        **({"hosted_checkout": True} if request.choice.hosted else {}),
    }
    return await run_idempotent(deps, caller, "payOrder", request.idempotency_key, fingerprint, handler)


async def capture_payment(
    deps: Deps, caller: Caller, payment_id: str, amount: int | None, idempotency_key: str
) -> Outcome:
    async def handler(claim: Claim) -> Outcome:
        caller.require_admin()
        payment = await load_owned_payment(caller, payment_id)
        if payment.status is not PaymentStatus.AUTHORIZED or not payment.gateway_reference:
            raise UseCaseError(ErrorCode.INVALID_STATE, "Only an authorized payment can be captured.", "paymentId")
        capture_amount = payment.amount_authorized if amount is None else amount
        if not 0 < capture_amount <= payment.amount_authorized:
            raise UseCaseError(
                ErrorCode.INVALID_INPUT,
                f"Capture between 1 and {payment.amount_authorized} minor units.",
                "amount",
            )
        gateway = resolve_gateway(deps, payment.gateway)
        request = CaptureRequest(
            reference=payment.gateway_reference,
            amount=Money(capture_amount, payment.currency),
            idempotency_key=f"{payment.idempotency_key}-capture-{claim.record_id}",
        )
        return await call_and_apply(
            payment, caller, "capture", lambda: gateway.capture(request), retries=deps.gateways.retries
        )

    fingerprint = {"payment_id": payment_id, "amount": amount}
    return await run_idempotent(deps, caller, "capturePayment", idempotency_key, fingerprint, handler)


async def cancel_payment(deps: Deps, caller: Caller, payment_id: str, idempotency_key: str) -> Outcome:
    async def handler(claim: Claim) -> Outcome:
        caller.require_admin()
        payment = await load_owned_payment(caller, payment_id)
        if payment.status not in (PaymentStatus.AUTHORIZED, PaymentStatus.REQUIRES_ACTION) or not (
            payment.gateway_reference
        ):
            raise UseCaseError(ErrorCode.INVALID_STATE, "Only an uncaptured payment can be canceled.", "paymentId")
        gateway = resolve_gateway(deps, payment.gateway)
        request = VoidRequest(
            reference=payment.gateway_reference,
            idempotency_key=f"{payment.idempotency_key}-void-{claim.record_id}",
        )
        return await call_and_apply(
            payment, caller, "void", lambda: gateway.void(request), retries=deps.gateways.retries
        )

    return await run_idempotent(deps, caller, "cancelPayment", idempotency_key, {"payment_id": payment_id}, handler)


# One per process on purpose: concurrent completePayment calls for one payment share one gateway
# read here; across instances the per-principal limit bounds the reads instead.
_completing: SingleFlight[uuid.UUID, Outcome] = SingleFlight()


# Bounds on what completePayment's `returned` may carry: providers hand back a few ids, a signature and
# at most a redirect result of a few kilobytes.
MAX_RETURNED_VALUES = 16
MAX_RETURNED_VALUE_LENGTH = 8192


async def complete_payment(
    deps: Deps, caller: Caller, payment_id: str, returned: Sequence[tuple[str, str]] = ()
) -> Outcome:
    """Re-read a payment from its gateway and apply what the gateway says (safe to repeat).

    With `returned` (what the gateway's checkout handed the SPA), the gateway verifies those values and
    answers the payment as it reads it; values that do not verify change nothing. Each call counts against
    the principal's completePayment limit; calls for a payment whose read is already running wait for that
    read instead of starting another."""
    try:
        principal = caller.require_principal()
        values = _returned_values(returned)
        if not await deps.complete_limiter.hit(principal.actor_name):
            raise UseCaseError(ErrorCode.RATE_LIMITED, "Too many payment checks. Wait a minute and try again.")
        payment = await load_owned_payment(caller, payment_id)
        gateway = resolve_gateway(deps, payment.gateway)
        if values and not isinstance(gateway, ShopperReturnGateway):
            raise UseCaseError(ErrorCode.INVALID_INPUT, "This payment's gateway takes no returned values.", "returned")
    except UseCaseError as error:
        return Outcome.failure(error)
    if not payment.gateway_reference:
        return Outcome(order_id=payment.order_id, payment_id=payment.id, next_action=payment.next_action)
    reference = payment.gateway_reference
    if values and isinstance(gateway, ShopperReturnGateway):
        returning = gateway

        async def verify_and_read() -> PaymentResult:
            return await returning.accept_shopper_return(
                reference,
                values,
                capture=payment.capture_method == CaptureMethod.AUTOMATIC,
                idempotency_key=f"{payment.idempotency_key}-complete",
            )

        # Not shared with other callers: each sends its own values, and each must be verified.
        return await call_and_apply(payment, caller, "payment check", verify_and_read)

    async def read_and_complete() -> PaymentResult:
        result = await gateway.retrieve(reference)
        return await complete_if_approved(gateway, payment, result)

    shared = await _completing.run(
        payment.id, lambda: call_and_apply(payment, caller, "payment check", read_and_complete)
    )
    # Every waiter gets the same outcome; each its own copy, so none can change another's answer.
    return dataclasses.replace(shared, errors=list(shared.errors))


def _returned_values(returned: Sequence[tuple[str, str]]) -> dict[str, str]:
    values: dict[str, str] = {}
    if len(returned) > MAX_RETURNED_VALUES:
        raise UseCaseError(ErrorCode.INVALID_INPUT, f"At most {MAX_RETURNED_VALUES} returned values.", "returned")
    for name, value in returned:
        if not name or name in values:
            raise UseCaseError(ErrorCode.INVALID_INPUT, "Each returned value needs its own name.", "returned")
        if len(value) > MAX_RETURNED_VALUE_LENGTH:
            raise UseCaseError(ErrorCode.INVALID_INPUT, f"Returned value {name!r} is too long.", "returned")
        values[name] = value
    return values


async def call_and_apply(
    payment: Payment,
    caller: Caller,
    operation: str,
    call: Callable[[], Awaitable[PaymentResult]],
    *,
    retries: RetryPolicy | None = None,
) -> Outcome:
    """Make the gateway call and apply its answer. With `retries`, an unreachable gateway or an unknown
    outcome is called again (the call sends the same idempotency key each time) within the request's
    deadline."""
    outcome = Outcome(order_id=payment.order_id, payment_id=payment.id)
    try:
        result = await (call() if retries is None else with_retries(retries, call, retryable=unanswered))
    except GatewayUnavailable as unavailable:
        message = refusal_message(operation, unavailable, payment_id=payment.id)
        outcome.errors.append(UserErrorData(ErrorCode.GATEWAY_UNAVAILABLE, message))
        outcome.disposition = Disposition.RELEASE
        return outcome
    except ShopperReturnRejected as rejected:
        # Values that claim a payment happened but do not verify: forged or tampered with, so logged as an attack.
        logger.warning(
            "rejected returned values for payment %s from %s: %s [%s]",
            payment.id,
            caller.actor(),
            rejected.message,
            rejected.detail,
        )
        outcome.errors.append(
            UserErrorData(ErrorCode.INVALID_INPUT, "The payment confirmation could not be verified.", "returned")
        )
        return outcome
    except GatewayError as refused:
        message = refusal_message(operation, refused, payment_id=payment.id)
        outcome.errors.append(UserErrorData(ErrorCode.INVALID_STATE, message))
        return outcome
    synced = await sync_payment(payment.id, result, source=EventSource.API, actor=caller.actor())
    outcome.next_action = synced.payment.next_action
    return outcome
