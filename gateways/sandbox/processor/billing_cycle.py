"""The sandbox billing cycle: invoicing, collecting an invoice, and everything that comes due on a clock.

Due work (a trial's end and its notice, `invoice.upcoming`, renewals, cancellation at the period end,
an unpaid first invoice expiring) fires in time order on the customer's test clock, whenever a billing
call or a clock advance reaches it, several periods at once after a long jump. The engine never retries
a failed invoice by itself: PayQL's dunning calls `pay_invoice`. A `past_due` subscription keeps renewing
(a new invoice each period, each charged once), which keeps the model simple. `invoice.upcoming` goes out
three days before a renewal whose period is longer than that (a trial's end has `trial_will_end`
instead). These functions run inside one processor call (see `billing_books.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Final

from gateways.sandbox.processor.billing_books import Books
from gateways.sandbox.processor.billing_objects import (
    INVOICE,
    PAYQL_SUBSCRIPTION_ID,
    USAGE_RECORD,
    InvoiceLine,
    InvoicePayment,
    InvoiceState,
    SandboxInvoice,
    SandboxPrice,
    SandboxSubscription,
    SandboxUsageRecord,
    SubscriptionState,
)
from gateways.sandbox.processor.billing_periods import MAX_PERIODS_PER_ADVANCE, add_intervals, days, next_period_end
from gateways.sandbox.processor.errors import SandboxInvalidRequest
from gateways.sandbox.processor.objects import (
    CaptureMode,
    IntentStatus,
    SandboxPaymentIntent,
    new_client_secret,
    new_id,
)
from gateways.sandbox.processor.test_methods import decline_message

NOTICE_BEFORE: Final = days(3)  # trial_will_end and invoice.upcoming, as Stripe sends them
INCOMPLETE_EXPIRES_AFTER: Final = 23 * 3600

SUBSCRIPTION_CREATE: Final = "subscription_create"
SUBSCRIPTION_CYCLE: Final = "subscription_cycle"
SUBSCRIPTION_UPDATE: Final = "subscription_update"

_ENDED: Final = frozenset({SubscriptionState.CANCELED, SubscriptionState.INCOMPLETE_EXPIRED})


# -- invoices and collection -------------------------------------------------------------------------


def issue_invoice(
    books: Books, sub: SandboxSubscription, lines: Sequence[InvoiceLine], reason: str, at: int
) -> tuple[SandboxSubscription, SandboxInvoice]:
    """Create and finalize an invoice of `lines`, taking the subscription's credit off it first."""
    total = sum(line.amount for line in lines)
    credit = min(sub.credit_balance, max(total, 0))
    period_start = min((line.period_start for line in lines), default=at)
    period_end = max((line.period_end for line in lines), default=at)
    if credit:
        credit_line = InvoiceLine("Credit for unused time", -credit, period_start, period_end, sub.price.id)
        lines = [*lines, credit_line]
        sub = replace(sub, credit_balance=sub.credit_balance - credit)
    draft = SandboxInvoice(
        id=new_id("in"),
        customer=sub.customer,
        subscription=sub.id,
        status=InvoiceState.DRAFT,
        billing_reason=reason,
        currency=sub.price.terms.currency,
        amount_due=total - credit,
        created=at,
        period_start=period_start,
        period_end=period_end,
        lines=tuple(lines),
        subscription_metadata=dict(sub.metadata),
    )
    books.put(INVOICE, draft, "invoice.created")
    finalized = replace(draft, status=InvoiceState.OPEN)
    books.put(INVOICE, finalized, "invoice.finalized")
    return replace(sub, latest_invoice=finalized.id), finalized


def collect(
    books: Books, sub: SandboxSubscription, invoice: SandboxInvoice, at: int
) -> tuple[SandboxSubscription, SandboxInvoice]:
    """One collection attempt with the subscription's default payment method (off-session), at `at`.

    Nothing to pay marks the invoice paid without a payment. A decline is an outcome, not an error.
    """
    if invoice.amount_due <= 0:
        paid = replace(invoice, status=InvoiceState.PAID, paid_at=at)
        books.put(INVOICE, paid, "invoice.paid")
        return replace(sub, status=collection_status(books, sub)), paid
    intent = _attempt_payment(books, sub, invoice, at)
    return settle(books, sub, replace(invoice, attempt_count=invoice.attempt_count + 1), intent, at)


def settle(
    books: Books, sub: SandboxSubscription, invoice: SandboxInvoice, intent: SandboxPaymentIntent, at: int
) -> tuple[SandboxSubscription, SandboxInvoice]:
    """Bring the invoice (and the subscription's status) in line with its payment intent's outcome."""
    invoice = replace(invoice, payment=_payment_of(intent))
    if intent.status is IntentStatus.SUCCEEDED:
        invoice = replace(invoice, status=InvoiceState.PAID, amount_paid=invoice.amount_due, paid_at=at)
        books.put(INVOICE, invoice, "invoice.paid")
    elif intent.status is IntentStatus.REQUIRES_ACTION:
        books.put(INVOICE, invoice, "invoice.payment_action_required")
    else:
        books.put(INVOICE, invoice, "invoice.payment_failed")
    return replace(sub, status=collection_status(books, sub)), invoice


def collection_status(books: Books, sub: SandboxSubscription) -> SubscriptionState:
    """A collecting subscription's status from its invoices: any still open means it is not paid up."""
    owing = bool(books.open_invoices_of(sub.id))
    if sub.status is SubscriptionState.INCOMPLETE:
        return SubscriptionState.INCOMPLETE if owing else SubscriptionState.ACTIVE
    if sub.status in (SubscriptionState.ACTIVE, SubscriptionState.PAST_DUE):
        return SubscriptionState.PAST_DUE if owing else SubscriptionState.ACTIVE
    return sub.status


def _attempt_payment(books: Books, sub: SandboxSubscription, invoice: SandboxInvoice, at: int) -> SandboxPaymentIntent:
    """Confirm the invoice's payment intent (created on the first attempt, reused after, as Stripe does)."""
    payment_method = sub.default_payment_method
    behaviour = books.behaviour(payment_method, at)  # saved cards expire on the customer's clock
    existing = None if invoice.payment is None else books.intent(invoice.payment.id)
    events: list[str] = []
    if existing is None:
        intent_id = new_id("pi")
        metadata = {"invoice": invoice.id, "subscription": sub.id}
        if PAYQL_SUBSCRIPTION_ID in sub.metadata:
            metadata[PAYQL_SUBSCRIPTION_ID] = sub.metadata[PAYQL_SUBSCRIPTION_ID]
        intent = SandboxPaymentIntent(
            id=intent_id,
            amount=invoice.amount_due,
            currency=invoice.currency,
            status=IntentStatus.REQUIRES_PAYMENT_METHOD,
            capture_method=CaptureMode.AUTOMATIC,
            payment_method=payment_method,
            client_secret=new_client_secret(intent_id),
            created=books.now,
            description=f"Subscription invoice {invoice.id}",
            customer=sub.customer,
            metadata=metadata,
            invoice=invoice.id,
        )
        events.append("payment_intent.created")
    else:
        intent = replace(existing, payment_method=payment_method, decline_code=None, decline_message=None)
    if behaviour.decline_code is not None:
        code = behaviour.decline_code
        intent = replace(
            intent,
            status=IntentStatus.REQUIRES_PAYMENT_METHOD,
            decline_code=code,
            decline_message=decline_message(code),
        )
        events.append("payment_intent.payment_failed")
    elif behaviour.requires_authentication:
        intent = replace(intent, status=IntentStatus.REQUIRES_ACTION)
        events.append("payment_intent.requires_action")
    else:
        intent = replace(intent, status=IntentStatus.SUCCEEDED, amount_received=intent.amount)
        events.append("payment_intent.succeeded")
    books.put_intent(intent, *events)
    return intent


def _payment_of(intent: SandboxPaymentIntent) -> InvoicePayment:
    return InvoicePayment(
        id=intent.id,
        status=intent.status.value,
        client_secret=intent.client_secret,
        decline_code=intent.decline_code,
        decline_message=intent.decline_message,
    )


def after_authentication(books: Books, intent: SandboxPaymentIntent) -> None:
    """The customer answered 3-D Secure for an invoice's payment: the invoice and subscription follow."""
    if intent.invoice is None:
        return
    invoice = books.invoice(intent.invoice)
    if invoice.status is not InvoiceState.OPEN:
        return
    sub = books.subscription(invoice.subscription)
    at = books.customer_now(books.customer(sub.customer))
    settled, _invoice = settle(books, sub, invoice, intent, at)
    if settled.status is not sub.status:
        books.save_subscription(settled, "customer.subscription.updated")


# -- what a period bills -----------------------------------------------------------------------------


def usage_in_period(books: Books, sub: SandboxSubscription) -> int:
    records: list[SandboxUsageRecord] = books.all(USAGE_RECORD)
    return sum(r.quantity for r in records if r.subscription == sub.id and r.period_start == sub.current_period_start)


def renewal_lines(books: Books, sub: SandboxSubscription, at: int) -> tuple[SandboxPrice, int, int, list[InvoiceLine]]:
    """What renewing at `at` bills: usage of the period just ended (metered, in arrears, at the price in
    effect) and the next period in advance (licensed, at the price switched to); also the billing-cycle
    anchor and end of the next period (a new interval starts a new cycle at `at`, as on Stripe)."""
    next_price = sub.pending_price or sub.price
    terms, current = next_price.terms, sub.price.terms
    same_cycle = (terms.interval, terms.interval_count) == (current.interval, current.interval_count)
    anchor = sub.billing_cycle_anchor if same_cycle else at
    period_end = next_period_end(anchor, terms.interval, terms.interval_count, at)
    lines: list[InvoiceLine] = []
    if sub.price.metered and sub.status is not SubscriptionState.TRIALING:
        used = usage_in_period(books, sub)
        lines.append(
            InvoiceLine(
                f"{used} x {current.product_name}",
                used * current.unit_amount,
                sub.current_period_start,
                at,
                sub.price.id,
                quantity=used,
            )
        )
    if not next_price.metered:
        lines.append(InvoiceLine(f"1 x {terms.product_name}", terms.unit_amount, at, period_end, next_price.id))
    return next_price, anchor, period_end, lines


def renew(books: Books, sub: SandboxSubscription, at: int) -> SandboxSubscription:
    """Start the next period at `at` (switching a pending price) and invoice it; also a trial's end."""
    next_price, anchor, period_end, lines = renewal_lines(books, sub, at)
    status = SubscriptionState.ACTIVE if sub.status is SubscriptionState.TRIALING else sub.status
    renewed = replace(
        sub,
        status=status,
        price=next_price,
        pending_price=None,
        billing_cycle_anchor=anchor,
        current_period_start=at,
        current_period_end=period_end,
    )
    renewed, invoice = issue_invoice(books, renewed, lines, SUBSCRIPTION_CYCLE, at)
    renewed, _invoice = collect(books, renewed, invoice, at)
    return books.save_subscription(renewed, "customer.subscription.updated")


def preview_renewal(books: Books, sub: SandboxSubscription, at: int) -> SandboxInvoice:
    """The invoice renewing at `at` would issue, not stored (Stripe's upcoming invoice)."""
    _price, _anchor, _end, lines = renewal_lines(books, sub, at)
    total = sum(line.amount for line in lines)
    return SandboxInvoice(
        id=new_id("upcoming_in"),
        customer=sub.customer,
        subscription=sub.id,
        status=InvoiceState.DRAFT,
        billing_reason=SUBSCRIPTION_CYCLE,
        currency=sub.price.terms.currency,
        amount_due=max(0, total - min(sub.credit_balance, max(total, 0))),
        created=books.customer_now(books.customer(sub.customer)),
        period_start=min((line.period_start for line in lines), default=at),
        period_end=max((line.period_end for line in lines), default=at),
        lines=tuple(lines),
        subscription_metadata=dict(sub.metadata),
        next_payment_attempt=at,
    )


# -- due work on the customer's clock ----------------------------------------------------------------


def _next_due(sub: SandboxSubscription) -> tuple[int, str] | None:
    """The subscription's next scheduled step and when it is due, or None."""
    status, end = sub.status, sub.current_period_end
    if status is SubscriptionState.INCOMPLETE:
        return sub.created + INCOMPLETE_EXPIRES_AFTER, "expire"
    if status is SubscriptionState.TRIALING:
        trial_end = sub.trial_end if sub.trial_end is not None else end
        if not sub.trial_will_end_sent:
            return max(sub.trial_start or sub.created, trial_end - NOTICE_BEFORE), "trial_will_end"
        return trial_end, "end" if sub.cancel_at_period_end else "renew"
    if status in (SubscriptionState.ACTIVE, SubscriptionState.PAST_DUE, SubscriptionState.PAUSED):
        if sub.cancel_at_period_end:
            return end, "end"
        if status is SubscriptionState.PAUSED:
            return None  # no invoices while paused
        if sub.upcoming_sent_for != end and end - NOTICE_BEFORE > sub.current_period_start:
            return end - NOTICE_BEFORE, "upcoming"
        return end, "renew"
    return None


def _expire(books: Books, sub: SandboxSubscription, at: int) -> None:
    """The first invoice stayed unpaid 23 hours: void it, drop its payment, end the subscription."""
    for invoice in books.open_invoices_of(sub.id):
        intent = None if invoice.payment is None else books.intent(invoice.payment.id)
        if intent is not None and intent.status is IntentStatus.REQUIRES_ACTION:
            canceled = replace(intent, status=IntentStatus.CANCELED, canceled_at=books.now)
            books.put_intent(canceled, "payment_intent.canceled")
            invoice = replace(invoice, payment=_payment_of(canceled))
        books.put(INVOICE, replace(invoice, status=InvoiceState.VOID, voided_at=at), "invoice.voided")
    ended = replace(sub, status=SubscriptionState.INCOMPLETE_EXPIRED, ended_at=at)
    books.save_subscription(ended, "customer.subscription.updated")


def _trial_will_end(books: Books, sub: SandboxSubscription, _at: int) -> None:
    books.save_subscription(replace(sub, trial_will_end_sent=True), "customer.subscription.trial_will_end")


def _upcoming(books: Books, sub: SandboxSubscription, _at: int) -> None:
    books.emit("invoice.upcoming", preview_renewal(books, sub, sub.current_period_end))
    books.save_subscription(replace(sub, upcoming_sent_for=sub.current_period_end))


def _end(books: Books, sub: SandboxSubscription, at: int) -> None:
    ended = replace(sub, status=SubscriptionState.CANCELED, ended_at=at, canceled_at=sub.canceled_at or at)
    books.save_subscription(ended, "customer.subscription.deleted")


def _renew(books: Books, sub: SandboxSubscription, at: int) -> None:
    renew(books, sub, at)


_STEPS: Final[dict[str, Callable[[Books, SandboxSubscription, int], None]]] = {
    "expire": _expire,
    "trial_will_end": _trial_will_end,
    "upcoming": _upcoming,
    "end": _end,
    "renew": _renew,
}


def run_due(books: Books, customer_id: str, until: int) -> None:
    """Fire every step of the customer's subscriptions due by `until` on its clock, earliest first."""
    for _ in range(MAX_PERIODS_PER_ADVANCE):
        due: list[tuple[int, int, str, str]] = []
        for sub in books.subscriptions_of(customer_id):
            step = _next_due(sub)
            if step is not None and step[0] <= until:
                due.append((step[0], sub.created, sub.id, step[1]))
        if not due:
            return
        at, _created, sub_id, name = min(due)
        _STEPS[name](books, books.subscription(sub_id), at)
    raise SandboxInvalidRequest("The clock moved too far ahead to bill in one call.", code="clock_advance_too_far")


def require_live(sub: SandboxSubscription) -> None:
    if sub.status in _ENDED:
        raise SandboxInvalidRequest(
            f"This subscription is {sub.status.value}; it can no longer change.", code="subscription_ended"
        )


def first_period_end(price: SandboxPrice, start: int) -> int:
    return add_intervals(start, price.terms.interval, price.terms.interval_count)
