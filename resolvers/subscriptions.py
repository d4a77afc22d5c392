"""Subscription use cases: subscribe, change plan, cancel, pause, resume, report usage, update the
payment method, and the development-only test clock.

Every change goes to the gateway's billing engine first, with an idempotency key derived from our
subscription and the client's idempotency record, and our mirror is then brought up to the
gateway's answer through `resolvers.subscription_sync`. A client never sends an amount: prices come
from our catalog, prorations from the gateway.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from tortoise.exceptions import IntegrityError

from db import refunds, transitions
from db import subscriptions as mirror
from db.idempotency import Claim, save_recovery_point
from db.models import Customer, Invoice, Payment, Price, PriceType, Refund, Subscription, UsageRecord
from db.transitions import Actor
from db.unit_of_work import unit_of_work
from domain.dunning import grants_access
from domain.money import Money
from domain.statuses import SUBSCRIPTION_ENDED, InvoiceStatus, SubscriptionStatus
from gateways.base import PaymentGateway
from gateways.billing import BillingGateway
from gateways.clocks import ClockControlGateway
from gateways.errors import (
    GatewayError,
    GatewayIdempotencyConflict,
    GatewayUnavailable,
    NotSupported,
    client_code_for_decline,
)
from gateways.registry import UnknownGateway
from gateways.types import (
    PlanChangeRequest,
    PlanPrice,
    ProrationMode,
    ProrationPreview,
    SubscriptionRequest,
    SubscriptionResult,
    UsageReport,
)
from resolvers.charging import remember_gateway_customer, validate_payment_method
from resolvers.checkout import customer_for, validate_return_url
from resolvers.context import Caller, Deps
from resolvers.errors import ErrorCode, UseCaseError
from resolvers.outcome import Disposition, Outcome, UserErrorData, run_idempotent
from resolvers.payments import parse_id
from resolvers.refunds import send_refund
from resolvers.subscription_sync import sync_subscription

logger = logging.getLogger(__name__)

MAX_TRIAL_DAYS = 730
MAX_USAGE_QUANTITY = 1_000_000_000
_CHANGEABLE = frozenset({SubscriptionStatus.ACTIVE, SubscriptionStatus.TRIALING, SubscriptionStatus.PAST_DUE})
_OWING = frozenset({SubscriptionStatus.PAST_DUE, SubscriptionStatus.UNPAID, SubscriptionStatus.INCOMPLETE})

GatewayCall = Callable[[BillingGateway, Subscription, str], Awaitable[SubscriptionResult]]


class RefundOnCancel(StrEnum):
    NONE = "NONE"
    PRORATED = "PRORATED"  # the unused share of the period's payment
    FULL = "FULL"  # all that is left of the period's payment


@dataclass(frozen=True, slots=True)
class CreateSubscriptionRequest:
    price_id: str
    # None: the routing policy's first usable gateway that bills subscriptions in the price's currency.
    gateway: str | None
    payment_method: str
    idempotency_key: str
    trial_days: int = 0
    return_url: str | None = None

    def fingerprint(self) -> dict[str, object]:
        return {
            "price_id": self.price_id,
            "gateway": self.gateway,
            "payment_method": self.payment_method,
            "trial_days": self.trial_days,
            "return_url": self.return_url,
        }


# -- reading ---------------------------------------------------------------------------------------


async def load_owned_subscription(caller: Caller, subscription_id: str) -> Subscription:
    """The subscription if the caller owns it or is staff; NOT_FOUND otherwise (never FORBIDDEN,
    which would confirm that someone else's id exists)."""
    principal = caller.require_principal()
    found = await Subscription.get_or_none(id=parse_id(subscription_id, "subscriptionId")).select_related("customer")
    if found is None or (not principal.is_admin and found.customer.external_id != principal.subject):
        raise UseCaseError(ErrorCode.NOT_FOUND, "No such subscription.", "subscriptionId")
    return found


async def list_subscriptions(caller: Caller, *, everyone: bool, limit: int) -> list[Subscription]:
    principal = caller.require_principal()
    query = Subscription.all()
    if everyone:
        caller.require_admin()
    else:
        query = query.filter(customer__external_id=principal.subject)
    return await query.order_by("-created_at").limit(max(1, min(limit, 200)))


async def entitled_product_ids(deps: Deps, caller: Caller) -> list[uuid.UUID]:
    """The products the caller may use now: from subscriptions that are trialing, active, or past due
    within their grace period (on the subscription's own billing clock)."""
    principal = caller.require_principal()
    candidates = await Subscription.filter(
        customer__external_id=principal.subject,
        status__in=[SubscriptionStatus.TRIALING, SubscriptionStatus.ACTIVE, SubscriptionStatus.PAST_DUE],
    ).select_related("price")
    products: dict[uuid.UUID, None] = {}
    for subscription in candidates:
        now = 0
        if subscription.status is SubscriptionStatus.PAST_DUE and subscription.gateway_reference:
            try:
                billing = deps.gateways.billing(subscription.gateway)
            except (UnknownGateway, NotSupported):
                continue  # its gateway was taken out of the configuration: its grace cannot be read
            now = await billing.billing_now(subscription.gateway_reference)
        if grants_access(SubscriptionStatus(subscription.status), subscription.grace_until, now):
            products[subscription.price.product_id] = None
    return list(products)


async def has_access(deps: Deps, caller: Caller, product_id: str) -> bool:
    return parse_id(product_id, "productId") in await entitled_product_ids(deps, caller)


async def preview_plan_change(deps: Deps, caller: Caller, subscription_id: str, price_id: str) -> ProrationPreview:
    subscription = await load_owned_subscription(caller, subscription_id)
    price = await _new_price_for(subscription, price_id)
    billing, _ = _billing(deps, subscription.gateway)
    reference = _require_reference(subscription)
    try:
        return await billing.preview_plan_change(reference, await plan_price(price))
    except GatewayError as error:
        raise _use_case_error(error) from None


# -- changing --------------------------------------------------------------------------------------


async def create_subscription(deps: Deps, caller: Caller, request: CreateSubscriptionRequest) -> Outcome:
    async def handler(claim: Claim) -> Outcome:
        subscription_id = claim.recovery_point.get("subscription_id")
        if subscription_id is not None:
            existing = await Subscription.get(id=subscription_id)
            if existing.gateway_reference is not None:
                return await _current_outcome(existing)
            return await _subscribe(deps, caller, existing, request, claim.recovery_point.get("gateway_customer"))
        created, gateway_customer = await _create_row(deps, caller, request, claim)
        return await _subscribe(deps, caller, created, request, gateway_customer)

    return await run_idempotent(
        deps, caller, "create_subscription", request.idempotency_key, request.fingerprint(), handler
    )


async def change_plan(
    deps: Deps, caller: Caller, subscription_id: str, price_id: str, proration: ProrationMode, idempotency_key: str
) -> Outcome:
    async def call(billing: BillingGateway, subscription: Subscription, key: str) -> SubscriptionResult:
        price = await _new_price_for(subscription, price_id)
        request = PlanChangeRequest(_require_reference(subscription), await plan_price(price), proration, key)
        return await billing.change_plan(request)

    request = {"subscription_id": subscription_id, "price_id": price_id, "proration": proration.value}
    return await _change(deps, caller, "change_subscription_plan", subscription_id, idempotency_key, request, call)


async def cancel_subscription(
    deps: Deps,
    caller: Caller,
    subscription_id: str,
    at_period_end: bool,
    idempotency_key: str,
    refund: RefundOnCancel = RefundOnCancel.NONE,
) -> Outcome:
    """Cancel now or at the period end; staff canceling now may refund the unused part or all of the
    period's payment. The refund is its own entity (a PENDING row first, then the gateway)."""

    async def handler(claim: Claim) -> Outcome:
        subscription = await load_owned_subscription(caller, subscription_id)
        if refund is not RefundOnCancel.NONE:
            caller.require_admin()
            if at_period_end:
                raise UseCaseError(ErrorCode.INVALID_INPUT, "A refund comes only with canceling now.", "refund")
        resumed = claim.recovery_point.get("refund_id")
        if resumed is not None:
            sent = await send_refund(deps, caller, await Refund.get(id=resumed))
            return _with_refund(await _current_outcome(subscription), sent)
        if subscription.status in SUBSCRIPTION_ENDED:
            raise UseCaseError(ErrorCode.INVALID_STATE, "This subscription has ended already.")

        async def cancel(billing: BillingGateway, subscription: Subscription, key: str) -> SubscriptionResult:
            reference = _require_reference(subscription)
            return await billing.cancel_subscription(reference, at_period_end=at_period_end, idempotency_key=key)

        outcome = await _call_and_sync(deps, caller, "cancel_subscription", subscription, claim, cancel)
        if refund is RefundOnCancel.NONE or outcome.errors:
            return outcome
        created = await _refund_unused(subscription, refund, caller, claim)
        if created is None:
            return outcome
        return _with_refund(outcome, await send_refund(deps, caller, created))

    request = {"subscription_id": subscription_id, "at_period_end": at_period_end, "refund": refund.value}
    return await run_idempotent(deps, caller, "cancel_subscription", idempotency_key, request, handler)


async def _refund_unused(
    subscription: Subscription, mode: RefundOnCancel, caller: Caller, claim: Claim
) -> Refund | None:
    """A PENDING refund of the paid invoice covering the period just cut short: all of what is left of
    it (FULL) or the unused share of the period (PRORATED), never more than is refundable."""
    fresh = await Subscription.get(id=subscription.id)
    invoice = (
        await Invoice.filter(subscription_id=fresh.id, status=InvoiceStatus.PAID, order_id__isnull=False)
        .order_by("-period_start", "-created_at")
        .first()
    )
    if invoice is None or invoice.order_id is None:
        return None
    payment = await Payment.filter(order_id=invoice.order_id).first()
    if payment is None:
        return None
    reason = f"subscription {fresh.id} canceled: {mode.value.lower()} refund"
    async with unit_of_work() as uow:
        order, locked = await transitions.lock_payment(payment.id, uow)
        available = await refunds.refundable_amount(locked, uow)
        amount = available if mode is RefundOnCancel.FULL else min(available, _unused_share(fresh, invoice))
        if amount <= 0:
            return None
        created = await refunds.create_refund(order, locked, amount, reason, caller.actor(reason), uow)
        await save_recovery_point(claim, {"refund_id": str(created.id)}, uow.connection)
    return created


def _unused_share(subscription: Subscription, invoice: Invoice) -> int:
    """The invoice's amount times the unused fraction of its period, rounded half up to minor units."""
    start, end, stopped = invoice.period_start, invoice.period_end, subscription.ended_at or subscription.canceled_at
    if start is None or end is None or stopped is None or end <= start:
        return 0
    unused = max(0.0, min((end - stopped).total_seconds(), (end - start).total_seconds()))
    total = (end - start).total_seconds()
    return int((invoice.amount_paid * int(unused) * 2 + int(total)) // (2 * int(total)))


def _with_refund(outcome: Outcome, sent: Outcome) -> Outcome:
    outcome.refund_id = sent.refund_id
    outcome.payment_id = sent.payment_id
    outcome.order_id = sent.order_id
    outcome.errors += sent.errors
    if sent.disposition is Disposition.RELEASE:
        outcome.disposition = Disposition.RELEASE
    return outcome


async def pause_subscription(deps: Deps, caller: Caller, subscription_id: str, idempotency_key: str) -> Outcome:
    async def call(billing: BillingGateway, subscription: Subscription, key: str) -> SubscriptionResult:
        if subscription.status not in _CHANGEABLE:
            raise UseCaseError(ErrorCode.INVALID_STATE, "Only a running subscription can be paused.")
        return await billing.pause_subscription(_require_reference(subscription), idempotency_key=key)

    request = {"subscription_id": subscription_id}
    return await _change(deps, caller, "pause_subscription", subscription_id, idempotency_key, request, call)


async def resume_subscription(deps: Deps, caller: Caller, subscription_id: str, idempotency_key: str) -> Outcome:
    async def call(billing: BillingGateway, subscription: Subscription, key: str) -> SubscriptionResult:
        if subscription.status is not SubscriptionStatus.PAUSED:
            raise UseCaseError(ErrorCode.INVALID_STATE, "Only a paused subscription can be resumed.")
        return await billing.resume_subscription(_require_reference(subscription), idempotency_key=key)

    request = {"subscription_id": subscription_id}
    return await _change(deps, caller, "resume_subscription", subscription_id, idempotency_key, request, call)


async def update_default_payment_method(
    deps: Deps, caller: Caller, subscription_id: str, payment_method: str, idempotency_key: str
) -> Outcome:
    async def call(billing: BillingGateway, subscription: Subscription, key: str) -> SubscriptionResult:
        token = validate_payment_method(payment_method)
        if subscription.status in SUBSCRIPTION_ENDED:
            raise UseCaseError(ErrorCode.INVALID_STATE, "This subscription has ended already.")
        reference = _require_reference(subscription)
        updated = await billing.update_default_payment_method(reference, token, idempotency_key=key)
        if subscription.status not in _OWING:
            return updated
        # A customer who fixed their card expects the debt collected now, not at the next retry.
        owing = await subscription.invoices.filter(status=InvoiceStatus.OPEN).order_by("-created_at").first()
        if owing is None:
            return updated
        await billing.pay_invoice(owing.gateway_reference, idempotency_key=f"{key}:pay")
        return await billing.retrieve_subscription(reference)

    request = {"subscription_id": subscription_id, "payment_method": payment_method}
    return await _change(deps, caller, "update_default_payment_method", subscription_id, idempotency_key, request, call)


async def report_usage(
    deps: Deps,
    caller: Caller,
    subscription_id: str,
    price_id: str,
    quantity: int,
    timestamp: datetime | None,
    idempotency_key: str,
) -> Outcome:
    """Record metered usage once per key: the row's unique key is what makes a replay count once."""

    async def handler(claim: Claim) -> Outcome:
        if not 1 <= quantity <= MAX_USAGE_QUANTITY:
            raise UseCaseError(ErrorCode.INVALID_INPUT, f"Quantity must be 1 to {MAX_USAGE_QUANTITY}.", "quantity")
        subscription = await load_owned_subscription(caller, subscription_id)
        if str(subscription.price_id) != price_id:
            raise UseCaseError(ErrorCode.INVALID_INPUT, "This price is not on the subscription.", "priceId")
        price = await Price.get(id=subscription.price_id)
        if not price.metered:
            raise UseCaseError(ErrorCode.INVALID_INPUT, "Usage is reported only for metered prices.", "priceId")
        if subscription.status in SUBSCRIPTION_ENDED:
            raise UseCaseError(ErrorCode.INVALID_STATE, "This subscription has ended already.")
        billing, _ = _billing(deps, subscription.gateway)
        reference = _require_reference(subscription)
        at = int(timestamp.timestamp()) if timestamp is not None else await billing.billing_now(reference)
        record = await _usage_row(subscription, price, quantity, at, idempotency_key)
        try:
            gateway_reference = await billing.report_usage(
                UsageReport(reference, str(price.id), quantity, at, f"usage-{record.id}")
            )
        except GatewayUnavailable as error:
            return _unavailable(subscription, error)
        except GatewayError as error:
            raise _use_case_error(error) from None
        await UsageRecord.filter(id=record.id).update(gateway_reference=gateway_reference)
        return Outcome(subscription_id=subscription.id)

    request = {"subscription_id": subscription_id, "price_id": price_id, "quantity": quantity, "at": str(timestamp)}
    return await run_idempotent(deps, caller, "report_usage", idempotency_key, request, handler)


NO_TEST_CLOCK = "Test clocks exist only on a development gateway."


async def advance_clock(deps: Deps, caller: Caller, subscription_id: str, seconds: int) -> tuple[Subscription, int]:
    """Test-only: move the test clock of the subscription's customer and fire what came due;
    returns the subscription and the clock's new time.

    Only a development gateway has test clocks (`ClockControlGateway`), and production refuses those.
    """
    caller.require_admin()
    subscription = await load_owned_subscription(caller, subscription_id)
    try:
        gateway = deps.gateways.get(subscription.gateway)
    except UnknownGateway:
        raise UseCaseError(ErrorCode.NOT_SUPPORTED, NO_TEST_CLOCK) from None
    if not isinstance(gateway, ClockControlGateway):
        raise UseCaseError(ErrorCode.NOT_SUPPORTED, NO_TEST_CLOCK)
    if not 0 < seconds <= 5 * 366 * 86_400:
        raise UseCaseError(ErrorCode.INVALID_INPUT, "Advance by 1 second to 5 years.", "seconds")
    now = await gateway.advance_customer_clock(str(subscription.customer_id), seconds)
    return subscription, now


# -- machinery -------------------------------------------------------------------------------------


async def plan_price(price: Price) -> PlanPrice:
    await price.fetch_related("product")
    if price.recurring_interval is None:
        raise UseCaseError(ErrorCode.INVALID_INPUT, "This price is not recurring.", "priceId")
    return PlanPrice(
        price_id=str(price.id),
        product_id=str(price.product_id),
        product_name=price.product.name,
        unit_amount=Money(price.unit_amount, price.currency),
        interval=price.recurring_interval.value,
        interval_count=price.recurring_interval_count,
        metered=bool(price.metered),
    )


async def _recurring_price(price_id: str) -> Price:
    price = await Price.get_or_none(id=parse_id(price_id, "priceId"), active=True).select_related("product")
    if price is None or not price.product.active:
        raise UseCaseError(ErrorCode.NOT_FOUND, "No such price.", "priceId")
    if price.type is not PriceType.RECURRING:
        raise UseCaseError(ErrorCode.INVALID_INPUT, "One-time prices are bought with checkout.", "priceId")
    return price


async def _new_price_for(subscription: Subscription, price_id: str) -> Price:
    price = await _recurring_price(price_id)
    if price.id == subscription.price_id:
        raise UseCaseError(ErrorCode.INVALID_INPUT, "The subscription is on this price already.", "priceId")
    if price.currency != subscription.currency:
        raise UseCaseError(ErrorCode.INVALID_INPUT, "A plan change keeps the subscription's currency.", "priceId")
    if bool(price.metered) != bool((await Price.get(id=subscription.price_id)).metered):
        raise UseCaseError(ErrorCode.INVALID_INPUT, "Metered and licensed plans cannot be swapped.", "priceId")
    if subscription.status not in _CHANGEABLE:
        raise UseCaseError(ErrorCode.INVALID_STATE, "Only a running subscription can change plan.")
    return price


def _billing_gateway(deps: Deps, currency: str, chosen: str | None) -> str:
    """The chosen gateway, else the first the routing policy allows that bills subscriptions."""
    names = deps.gateways.route(currency, chosen=chosen, needs=lambda capabilities: capabilities.billing)
    if not names:
        raise UseCaseError(
            ErrorCode.GATEWAY_UNAVAILABLE, "No payment service can take this subscription right now. Retry shortly."
        )
    return names[0]


async def _create_row(
    deps: Deps, caller: Caller, request: CreateSubscriptionRequest, claim: Claim
) -> tuple[Subscription, str | None]:
    """The INCOMPLETE subscription row, remembered for a retried request with the gateway customer its gateway
    request names: a retry must send the gateway the same request, even after the first one's answer made the
    customer known."""
    principal = caller.require_principal()
    if request.gateway is not None:
        _billing(deps, request.gateway)
    if not 0 <= request.trial_days <= MAX_TRIAL_DAYS:
        raise UseCaseError(ErrorCode.INVALID_INPUT, f"Trials last 0 to {MAX_TRIAL_DAYS} days.", "trialDays")
    payment_method = validate_payment_method(request.payment_method)
    validate_return_url(request.return_url, deps.policy.return_origins)
    price = await _recurring_price(request.price_id)
    gateway = _billing_gateway(deps, price.currency, request.gateway)
    customer = await customer_for(principal)
    async with unit_of_work() as uow:
        subscription_id = uuid.uuid4()
        subscription = await Subscription.create(
            id=subscription_id,
            customer=customer,
            price=price,
            gateway=gateway,
            idempotency_key=f"subscription-{subscription_id}",
            currency=price.currency,
            unit_amount=price.unit_amount,
            payment_method=payment_method,
            using_db=uow.connection,
        )
        await mirror.record_subscription_created(subscription, caller.actor("subscribe"), uow)
        gateway_customer = (customer.gateway_references or {}).get(gateway)
        recovery = {"subscription_id": str(subscription.id), "gateway_customer": gateway_customer}
        await save_recovery_point(claim, recovery, uow.connection)
    return subscription, gateway_customer if isinstance(gateway_customer, str) else None


async def _subscribe(
    deps: Deps,
    caller: Caller,
    subscription: Subscription,
    request: CreateSubscriptionRequest,
    gateway_customer: str | None,
) -> Outcome:
    billing, gateway = _billing(deps, subscription.gateway)
    customer = await Customer.get(id=subscription.customer_id)
    price = await Price.get(id=subscription.price_id)
    gateway_request = SubscriptionRequest(
        payql_subscription_id=str(subscription.id),
        customer_id=str(customer.id),
        customer_email=customer.email,
        price=await plan_price(price),
        payment_method=subscription.payment_method,
        idempotency_key=subscription.idempotency_key,
        trial_days=request.trial_days,
        return_url=request.return_url,
        gateway_customer=gateway_customer,
    )
    try:
        result = await billing.create_subscription(gateway_request)
    except GatewayUnavailable as error:
        return _unavailable(subscription, error)
    except GatewayError as error:
        async with unit_of_work() as uow:
            locked = await mirror.lock_subscription(subscription.id, uow)
            await mirror.move_subscription(
                locked, SubscriptionStatus.INCOMPLETE_EXPIRED, actor=caller.actor(error.message), uow=uow
            )
        failed = _use_case_error(error)
        outcome = Outcome(subscription_id=subscription.id)
        outcome.errors.append(UserErrorData(failed.code, failed.message, failed.field))
        return outcome
    if result.customer_reference:
        await remember_gateway_customer(customer.id, subscription.gateway, result.customer_reference)
    return await _synced_outcome(deps, gateway, billing, subscription, result, caller.actor("subscribe"))


async def _change(
    deps: Deps,
    caller: Caller,
    operation: str,
    subscription_id: str,
    idempotency_key: str,
    request: dict[str, Any],
    call: GatewayCall,
) -> Outcome:
    async def handler(claim: Claim) -> Outcome:
        subscription = await load_owned_subscription(caller, subscription_id)
        return await _call_and_sync(deps, caller, operation, subscription, claim, call)

    return await run_idempotent(deps, caller, operation, idempotency_key, request, handler)


async def _call_and_sync(
    deps: Deps, caller: Caller, operation: str, subscription: Subscription, claim: Claim, call: GatewayCall
) -> Outcome:
    """One change at the gateway, then our mirror brought up to its answer."""
    billing, gateway = _billing(deps, subscription.gateway)
    # Derived from our entities: a retry of this request (same record) sends the same key.
    key = f"{subscription.id}:{operation}:{claim.record_id}"
    try:
        result = await call(billing, subscription, key)
    except GatewayUnavailable as error:
        return _unavailable(subscription, error)
    except GatewayError as error:
        raise _use_case_error(error) from None
    return await _synced_outcome(deps, gateway, billing, subscription, result, caller.actor(operation))


async def _synced_outcome(
    deps: Deps,
    gateway: PaymentGateway,
    billing: BillingGateway,
    subscription: Subscription,
    result: SubscriptionResult,
    actor: Actor,
) -> Outcome:
    """Our mirror brought up to the gateway's answer, and the outcome. The sync reads the gateway again (its
    clock, the invoice's payment); when such a read goes unanswered the change is made at the gateway but not
    yet mirrored: GATEWAY_UNAVAILABLE, and the same key sends the same request again, which the gateway's
    idempotency answers with what it did, and syncs again (webhooks and reconciliation catch up meanwhile)."""
    try:
        synced = await sync_subscription(
            gateway, billing, subscription.id, result, actor=actor, policy=deps.policy.billing
        )
    except GatewayUnavailable as error:
        return _unavailable(subscription, error)
    return await _current_outcome(synced)


async def _current_outcome(subscription: Subscription) -> Outcome:
    """The subscription as it is now, the action its latest open invoice waits for, and why it failed."""
    fresh = await Subscription.get(id=subscription.id)
    outcome = Outcome(subscription_id=fresh.id)
    invoice = await fresh.invoices.all().order_by("-created_at").first()
    if invoice is not None and invoice.status == "OPEN":
        outcome.next_action = invoice.next_action
        if invoice.decline_code and fresh.status is SubscriptionStatus.INCOMPLETE:
            code = ErrorCode(client_code_for_decline(invoice.decline_code))
            outcome.errors.append(UserErrorData(code, "The payment was declined.", "paymentMethod"))
    return outcome


async def _usage_row(subscription: Subscription, price: Price, quantity: int, at: int, key: str) -> UsageRecord:
    try:
        return await UsageRecord.create(
            subscription_id=subscription.id,
            price_id=price.id,
            quantity=quantity,
            timestamp=datetime.fromtimestamp(at, UTC),
            idempotency_key=key,
        )
    except IntegrityError:
        # A copy of this report after the first one lost its answer: the same row, sent again.
        return await UsageRecord.get(subscription_id=subscription.id, idempotency_key=key)


def _billing(deps: Deps, name: str) -> tuple[BillingGateway, PaymentGateway]:
    try:
        gateway = deps.gateways.get(name)
        return deps.gateways.billing(name), gateway
    except UnknownGateway:
        raise UseCaseError(ErrorCode.INVALID_INPUT, f"Unknown payment gateway {name!r}.", "gateway") from None
    except NotSupported as error:
        raise UseCaseError(ErrorCode.NOT_SUPPORTED, error.message, "gateway") from None


def _require_reference(subscription: Subscription) -> str:
    if subscription.gateway_reference is None:
        raise UseCaseError(ErrorCode.INVALID_STATE, "This subscription was never created at its gateway.")
    return subscription.gateway_reference


def _unavailable(subscription: Subscription, error: GatewayError) -> Outcome:
    logger.warning("billing gateway unavailable", extra={"subscription_id": str(subscription.id)})
    message = error.message or "The payment service did not answer. Retry with the same idempotency key."
    return Outcome(
        subscription_id=subscription.id,
        errors=[UserErrorData(ErrorCode.GATEWAY_UNAVAILABLE, message)],
        disposition=Disposition.RELEASE,
    )


def _use_case_error(error: GatewayError) -> UseCaseError:
    if isinstance(error, NotSupported):
        return UseCaseError(ErrorCode.NOT_SUPPORTED, error.message)
    if isinstance(error, GatewayIdempotencyConflict):
        return UseCaseError(ErrorCode.IDEMPOTENCY_CONFLICT, error.message, "idempotencyKey")
    return UseCaseError(ErrorCode.INVALID_INPUT, error.message)
