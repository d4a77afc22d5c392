"""Charging an order: create the payment row, call the gateway, apply its answer.

Read top-down, in the order a checkout or payOrder walks it: pick the gateways (`routed_gateways`:
the shopper's choice, else the routing policy's usable list for the currency) and check the choice,
insert the payment (`create_payment`) and remember it for a retried request, then `charge_routed`:
`charge_payment` (the gateway call, `_send`, and its answer through `payment_sync`), failing over to
the next gateway only when the first refused before accepting the request. What a crash or an unknown
outcome leaves behind is picked up by `resume_or_charge`.

Failover makes a NEW payment on the same order (the refused one is FAILED: nothing was charged), never
re-sends a payment elsewhere. An unknown outcome (`GatewayUnavailable`: a timeout after sending, our own
call timeout, the request's deadline, a 5xx) is never failed over: that payment stays in flight and is
retried on its own gateway with its own key until the request's deadline, then left to the webhook, a
retry of the request or reconciliation; so is a payment one of whose attempts had an unknown outcome,
whatever a later attempt says. A full bulkhead (`GatewayBusy`) sent nothing and fails over.
An explicit choice of gateway is never re-routed.

The payment row (and its gateway idempotency key, derived from our payment id) is committed
before the gateway is called, and no database lock is held during the call. An order with a
payment in flight or succeeded is never charged again, whatever idempotency key a client sends.

A hosted-checkout payment (the gateway's own payment page) is the same flow: its payment row says
`HOSTED_CHECKOUT_METHOD` instead of a payment method token, and the gateway answers with a page to
redirect to; the shopper coming back proves nothing, the webhook or a read does.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise.exceptions import IntegrityError

from db import transitions
from db.idempotency import Claim, save_recovery_point
from db.models import Customer, EventSource, LineItem, Order, Payment
from db.new_rows import new_row
from db.row_inserts import insert_rows
from db.transaction import transaction
from db.transitions import PaymentUpdate
from db.unit_of_work import UnitOfWork, unit_of_work
from domain.card_numbers import looks_like_card_number
from domain.money import Money
from domain.statuses import (
    PAYMENT_IN_FLIGHT,
    PAYMENT_SUCCEEDED,
    CaptureMethod,
    NextActionType,
    OrderStatus,
    PaymentStatus,
)
from gateways.base import PaymentGateway
from gateways.customers import CustomerDirectory
from gateways.errors import (
    CustomerActionRequired,
    GatewayError,
    GatewayIdempotencyConflict,
    GatewayNotAttempted,
    GatewayUnavailable,
    InvalidGatewayRequest,
    NotSupported,
    PaymentDeclined,
    client_code_for_decline,
)
from gateways.hosted import HostedCheckoutGateway, HostedCheckoutRequest, HostedLineItem
from gateways.package import Capabilities
from gateways.payment_method_carry import COLLECTED_BY_GATEWAY, Carry, Step, failover_step, first_step
from gateways.registry import GatewayRegistry, UnknownGateway
from gateways.retrying import RetryPolicy, unanswered, with_retries
from gateways.types import ChargeRequest, PaymentResult
from resolvers import fault_points
from resolvers.context import Caller, Deps
from resolvers.errors import ErrorCode, UseCaseError
from resolvers.gateway_refusals import shopper_refusal_message
from resolvers.outcome import Disposition, Outcome, UserErrorData
from resolvers.payment_sync import sync_payment

logger = logging.getLogger(__name__)

# A token is short, but a browser SDK's client-side encrypted card data (several encrypted fields as JSON) runs
# to a few kilobytes; the bound keeps a request from storing anything larger.
MAX_PAYMENT_METHOD_LENGTH = 16 * 1024
# What a hosted-checkout payment row records instead of a payment method token (the shopper picks one on the page).
HOSTED_CHECKOUT_METHOD = "hosted_checkout"


@dataclass(frozen=True, slots=True)
class PaymentChoice:
    # None: the routing policy picks (and may fail over); a name: the shopper's choice, never re-routed.
    gateway: str | None
    payment_method: str
    capture_method: CaptureMethod
    hosted: bool = False


def routed_gateways(deps: Deps, currency: str, choice: PaymentChoice) -> tuple[PaymentGateway, ...]:
    """The gateways to try for this payment, in order (at least one): the policy's, starting from the first
    that takes the shopper's token as it is (a token belongs to the gateway that issued it)."""
    if choice.gateway is not None:
        return (resolve_gateway(deps, choice.gateway),)

    def needs(capabilities: Capabilities) -> bool:
        return capabilities.hosted_checkout if choice.hosted else capabilities.payments

    names = deps.gateways.route(currency, chosen=None, needs=needs)
    if not names:
        raise UseCaseError(
            ErrorCode.GATEWAY_UNAVAILABLE, "No payment service can take this payment right now. Retry shortly."
        )
    first = 0 if choice.hosted else first_step(choice.payment_method, [deps.gateways.capabilities(n) for n in names])
    return tuple(deps.gateways.get(name) for name in (names[first], *names[:first], *names[first + 1 :]))


def resolve_gateway(deps: Deps, name: str) -> PaymentGateway:
    try:
        return deps.gateways.get(name)
    except UnknownGateway:
        raise UseCaseError(ErrorCode.INVALID_INPUT, f"Unknown payment gateway {name!r}.", "gateway") from None


def validated_choice(gateway: PaymentGateway, choice: PaymentChoice, return_url: str | None) -> PaymentChoice:
    """The choice as it will be stored: a checked token, or the hosted-checkout marker.

    A hosted page needs a gateway that has one and a return URL to send the shopper back to.
    """
    if not choice.hosted:
        return PaymentChoice(gateway.name, validate_payment_method(choice.payment_method), choice.capture_method)
    if not isinstance(gateway, HostedCheckoutGateway):
        raise UseCaseError(
            ErrorCode.INVALID_INPUT, f"The {gateway.name} gateway has no hosted checkout page.", "hostedCheckout"
        )
    if not return_url:
        raise UseCaseError(ErrorCode.INVALID_INPUT, "A hosted checkout needs a return URL.", "returnUrl")
    return PaymentChoice(gateway.name, HOSTED_CHECKOUT_METHOD, choice.capture_method, hosted=True)


def validate_payment_method(payment_method: str) -> str:
    value = payment_method.strip()
    if not value or len(value) > MAX_PAYMENT_METHOD_LENGTH or looks_like_card_number(value):
        raise UseCaseError(
            ErrorCode.INVALID_INPUT,
            "Send a payment method token from the payment form, never card details.",
            "paymentMethod",
        )
    return value


async def create_payment(
    order: Order, choice: PaymentChoice, caller: Caller, uow: UnitOfWork, *, new_order: bool = False
) -> Payment:
    """Insert a PENDING payment for a locked, payable order (raises if it is not payable); an order
    created in `uow` (`new_order`) has no payments to read."""
    payments = [] if new_order else await transitions.payments_of(order, uow)
    refuse_if_not_payable(order, payments)
    payment_id = uuid.uuid4()
    try:
        payment = new_row(
            Payment,
            id=payment_id,
            order_id=order.id,
            gateway=gateway_name(choice),
            idempotency_key=f"payql-payment-{payment_id}-1",
            capture_method=choice.capture_method,
            payment_method=choice.payment_method,
            currency=order.currency,
            amount=order.total_amount,
        )
        await insert_rows([payment], uow.connection)
    except IntegrityError:
        # The database's one-live-payment index (migration 0005): another payment got in first.
        raise UseCaseError(
            ErrorCode.PAYMENT_IN_PROGRESS, "Another payment for this order is in progress or has succeeded."
        ) from None
    await transitions.record_payment_created(payment, order, payments, caller.actor(), uow)
    return payment


def gateway_name(choice: PaymentChoice) -> str:
    if choice.gateway is None:
        raise TypeError("a payment is created on a routed gateway; validated_choice names it")
    return choice.gateway


def refuse_if_not_payable(order: Order, payments: list[Payment]) -> None:
    if any(p.status in PAYMENT_SUCCEEDED for p in payments) or order.status not in (
        OrderStatus.PENDING,
        OrderStatus.PROCESSING,
        OrderStatus.REQUIRES_ACTION,
    ):
        if order.status is OrderStatus.CANCELED:
            raise UseCaseError(ErrorCode.INVALID_STATE, "This order was canceled.")
        raise UseCaseError(ErrorCode.ALREADY_PAID, "This order is already paid.")
    if any(p.status in PAYMENT_IN_FLIGHT for p in payments):
        raise UseCaseError(ErrorCode.PAYMENT_IN_PROGRESS, "A payment for this order is already in progress.")


async def remember_payment(claim: Claim, payment: Payment, uow: UnitOfWork) -> None:
    await save_recovery_point(claim, {"order_id": str(payment.order_id), "payment_id": str(payment.id)}, uow.connection)


async def charge_routed(
    order: Order,
    payment: Payment,
    fallbacks: Sequence[PaymentGateway],
    choice: PaymentChoice,
    caller: Caller,
    claim: Claim,
    registry: GatewayRegistry,
) -> Outcome:
    """Charge the payment on its gateway; when that gateway refused before accepting the request (or its
    circuit opened meanwhile) and the policy has more, fail the payment (nothing was charged) and move on
    (`gateways.payment_method_carry`): a new payment on the next gateway that takes the shopper's token as
    it is, or else on the next one, which collects a payment method itself (its redirect is the answer), or
    which the SPA is told to tokenize on (a COLLECT_PAYMENT_METHOD next action, no payment made there).
    A chosen gateway is called whatever its circuit says. `order` is the payment's (its return URL and
    customer are what the gateways are sent)."""
    gateways = list(fallbacks)
    gateway = gateways.pop(0)
    while True:
        if choice.gateway is not None or registry.health.allows(gateway.name):
            try:
                return await charge_payment(
                    payment, gateway, caller, registry.retries, may_fail_over=bool(gateways), order=order
                )
            except _FailOver:
                pass
        else:
            resting = GatewayNotAttempted("The payment service is resting after failures.", detail="circuit open")
            if not gateways:
                return _unavailable(Outcome(order_id=payment.order_id, payment_id=payment.id), payment, resting)
            await _record_failure(payment, caller, resting)
        step = _failover_step(choice, gateways, registry)
        if step.carry is Carry.SHOPPER_COLLECTS:
            return _collect_on(payment, gateways[step.index].name)
        gateway = gateways.pop(step.index)
        logger.warning(
            "failing over to the next gateway",
            extra={"payment_id": str(payment.id), "gateway": gateway.name, "carry": str(step.carry)},
        )
        carried = choice if step.carry is Carry.AS_SENT else replace(choice, payment_method=COLLECTED_BY_GATEWAY)
        payment = await _next_payment(order, gateway, carried, caller, claim)


def _failover_step(choice: PaymentChoice, gateways: Sequence[PaymentGateway], registry: GatewayRegistry) -> Step:
    """The next gateway of those left (at least one) and how the shopper's payment method gets there; a hosted
    page needs nothing from the shopper on any (the list holds only gateways that have one)."""
    if choice.hosted:
        return Step(0, Carry.AS_SENT)
    step = failover_step(choice.payment_method, [registry.capabilities(gateway.name) for gateway in gateways])
    if step is None:
        raise ValueError("failing over needs a gateway left to go to")
    return step


def _collect_on(failed: Payment, gateway: str) -> Outcome:
    """Nothing was charged and no gateway left can take the shopper's token: tell the SPA where to collect one."""
    logger.warning("failover needs a payment method from the shopper", extra={"payment_id": str(failed.id)})
    outcome = Outcome(
        order_id=failed.order_id,
        payment_id=failed.id,
        next_action={"type": NextActionType.COLLECT_PAYMENT_METHOD.value, "gateway": gateway},
    )
    outcome.errors.append(
        UserErrorData(
            ErrorCode.GATEWAY_UNAVAILABLE,
            f"Nothing was charged: the payment service is unavailable. Pay with {gateway} instead (nextAction).",
            "paymentMethod",
        )
    )
    return outcome


class _FailOver(Exception):
    """The payment's gateway refused before accepting it; the payment is FAILED and the next may be tried."""


async def _next_payment(
    order: Order, gateway: PaymentGateway, choice: PaymentChoice, caller: Caller, claim: Claim
) -> Payment:
    """A new PENDING payment on the same order on `gateway`, remembered for a retried request."""
    next_choice = validated_choice(gateway, choice, order.return_url)
    async with unit_of_work() as uow:
        locked = await transitions.lock_order(order.id, uow)
        payment = await create_payment(locked, next_choice, caller, uow)
        await remember_payment(claim, payment, uow)
    return payment


async def charge_payment(
    payment: Payment,
    gateway: PaymentGateway,
    caller: Caller,
    retries: RetryPolicy,
    *,
    may_fail_over: bool = False,
    order: Order | None = None,
) -> Outcome:
    """Send a committed PENDING payment to its gateway (retried with the same key while it is unreachable
    or its outcome unknown) and record the answer.

    With `may_fail_over`, a refusal before the gateway accepted the request, when no earlier attempt may have
    reached it, fails the payment at once and raises `_FailOver` for `charge_routed`; any other failure is
    answered here. `order` is the payment's when the caller has it (read here otherwise)."""
    outcome = Outcome(order_id=payment.order_id, payment_id=payment.id)
    if order is None:
        order = await Order.get(id=payment.order_id).only("id", "return_url", "customer_id")

    # Once an attempt may have reached the gateway (a timeout after sending), a later attempt's refusal
    # before acting says nothing about the earlier one: the payment may be charged, and is never failed over.
    may_have_acted = False

    async def attempt() -> PaymentResult:
        nonlocal may_have_acted
        try:
            return await _send(payment, order, gateway)
        except GatewayNotAttempted:
            raise
        except GatewayUnavailable:
            may_have_acted = True
            raise

    def fails_over(error: BaseException) -> bool:
        return may_fail_over and not may_have_acted and isinstance(error, GatewayNotAttempted)

    try:
        result = await with_retries(
            retries, attempt, retryable=lambda error: unanswered(error) and not fails_over(error)
        )
    except GatewayNotAttempted as refused:
        if not fails_over(refused):
            return _unavailable(outcome, payment, refused)
        await _record_failure(payment, caller, refused)
        raise _FailOver from refused
    except PaymentDeclined as declined:
        await _record_failure(payment, caller, declined, decline_code=declined.decline_code)
        code = ErrorCode(client_code_for_decline(declined.decline_code))
        outcome.errors.append(UserErrorData(code, declined.message, "paymentMethod"))
        return outcome
    except GatewayUnavailable as unavailable:
        # The outcome is unknown: the payment stays in flight on this gateway, never tried elsewhere.
        return _unavailable(outcome, payment, unavailable)
    except (
        InvalidGatewayRequest,
        GatewayIdempotencyConflict,
        NotSupported,
        CustomerActionRequired,
    ) as refused:
        message = shopper_refusal_message(refused, payment_id=payment.id)
        await _record_failure(payment, caller, refused, message=message)
        outcome.errors.append(UserErrorData(_CODE_FOR_REFUSAL[type(refused)], message, "paymentMethod"))
        return outcome
    except GatewayError as other:
        logger.error("gateway error: %s", other.detail or other.message, extra={"payment_id": str(payment.id)})
        outcome.errors.append(UserErrorData(ErrorCode.GATEWAY_UNAVAILABLE, _UNAVAILABLE_MESSAGE))
        outcome.disposition = Disposition.RELEASE
        return outcome

    # The gateway has the money and we have not recorded it yet: where a crash hurts most.
    fault_points.reach("after_gateway_charge")
    synced = await sync_payment(payment.id, result, source=EventSource.API, actor=caller.actor())
    outcome.next_action = synced.payment.next_action
    outcome.committed_order, outcome.committed_payment = synced.order, synced.payment
    return outcome


_UNAVAILABLE_MESSAGE = "The payment service did not answer. Retry with the same idempotency key."


def _unavailable(outcome: Outcome, payment: Payment, unavailable: GatewayUnavailable) -> Outcome:
    logger.warning("gateway unavailable; payment outcome unknown", extra={"payment_id": str(payment.id)})
    outcome.errors.append(UserErrorData(ErrorCode.GATEWAY_UNAVAILABLE, unavailable.message or _UNAVAILABLE_MESSAGE))
    outcome.disposition = Disposition.RELEASE
    return outcome


_CODE_FOR_REFUSAL: dict[type[GatewayError], ErrorCode] = {
    InvalidGatewayRequest: ErrorCode.INVALID_INPUT,
    GatewayIdempotencyConflict: ErrorCode.IDEMPOTENCY_CONFLICT,
    NotSupported: ErrorCode.NOT_SUPPORTED,
    CustomerActionRequired: ErrorCode.AUTHENTICATION_REQUIRED,
}


async def _send(payment: Payment, order: Order, gateway: PaymentGateway) -> PaymentResult:
    """The gateway call: open its hosted page, or charge the payment method token."""
    if payment.payment_method == HOSTED_CHECKOUT_METHOD:
        return await hosted_checkout(payment, gateway, order.return_url)
    request = ChargeRequest(
        amount=Money(payment.amount, payment.currency),
        payment_method=payment.payment_method,
        capture_method=CaptureMethod(payment.capture_method),
        idempotency_key=payment.idempotency_key,
        description=f"Order {payment.order_id}",
        return_url=order.return_url,
        customer_reference=await gateway_customer(gateway, order.customer_id),
        metadata={"payql_order_id": str(payment.order_id), "payql_payment_id": str(payment.id)},
    )
    return await gateway.charge(request)


async def _record_failure(
    payment: Payment, caller: Caller, error: GatewayError, decline_code: str | None = None, message: str | None = None
) -> None:
    """The gateway refused the payment: it failed, with the reason the shopper was given."""
    failed = PaymentUpdate(
        status=PaymentStatus.FAILED,
        gateway_reference=error.reference,
        decline_code=decline_code,
        failure_message=message or error.message,
    )
    await sync_payment(payment.id, failed, source=EventSource.API, actor=caller.actor())


async def hosted_checkout(payment: Payment, gateway: PaymentGateway, return_url: str | None) -> PaymentResult:
    """Open the gateway's payment page for the order's lines; REQUIRES_ACTION with a REDIRECT."""
    if not isinstance(gateway, HostedCheckoutGateway) or not return_url:
        raise NotSupported("This gateway has no hosted checkout page.")
    lines = await LineItem.filter(order_id=payment.order_id).order_by("id")
    request = HostedCheckoutRequest(
        amount=Money(payment.amount, payment.currency),
        line_items=tuple(
            HostedLineItem(line.product_name, Money(line.unit_amount, line.currency), line.quantity) for line in lines
        ),
        capture_method=CaptureMethod(payment.capture_method),
        idempotency_key=payment.idempotency_key,
        success_url=_with_query(return_url, payql_checkout="success"),
        cancel_url=_with_query(return_url, payql_checkout="cancel"),
        started_at=int(payment.created_at.timestamp()),
        description=f"Order {payment.order_id}",
        metadata={"payql_order_id": str(payment.order_id), "payql_payment_id": str(payment.id)},
    )
    return await gateway.create_hosted_checkout(request)


def _with_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = urlencode([*parse_qsl(parts.query, keep_blank_values=True), *params.items()])
    return urlunsplit(parts._replace(query=query))


async def gateway_customer(gateway: PaymentGateway, customer_id: uuid.UUID) -> str | None:
    """The gateway's customer for ours, created on first use and remembered; None for a gateway
    that keeps no customers."""
    if not isinstance(gateway, CustomerDirectory):
        return None
    customer = await Customer.get(id=customer_id)
    known = (customer.gateway_references or {}).get(gateway.name)
    if isinstance(known, str) and known:
        return known
    reference = await gateway.ensure_customer(str(customer.id), customer.email)
    await remember_gateway_customer(customer_id, gateway.name, reference)
    return reference


async def remember_gateway_customer(customer_id: uuid.UUID, gateway: str, reference: str) -> None:
    """Store the gateway's customer reference beside the others, under the row's lock: another request
    (for this gateway, whose idempotency gave it the same reference, or for another) may be storing too."""
    async with transaction() as connection:
        locked = await Customer.filter(id=customer_id).using_db(connection).select_for_update().get()
        references = dict(locked.gateway_references or {})
        if references.get(gateway) == reference:
            return
        references[gateway] = reference
        await Customer.filter(id=customer_id).using_db(connection).update(gateway_references=references)


async def resume_or_charge(claim: Claim, deps: Deps, caller: Caller) -> Outcome | None:
    """After a crash or an unknown outcome, continue with the payment the first copy created."""
    payment_id = claim.recovery_point.get("payment_id")
    if payment_id is None:
        return None
    payment = await Payment.get(id=payment_id)
    if payment.status is not PaymentStatus.PENDING:
        resumed = Outcome(order_id=payment.order_id, payment_id=payment.id, next_action=payment.next_action)
        if payment.status is PaymentStatus.FAILED:
            code = ErrorCode(client_code_for_decline(payment.decline_code or "generic_decline"))
            resumed.errors.append(
                UserErrorData(code, payment.failure_message or "The payment failed.", "paymentMethod")
            )
        return resumed
    return await charge_payment(payment, resolve_gateway(deps, payment.gateway), caller, deps.gateways.retries)
