"""What each sandbox billing call does to the books: start a subscription, change its plan, cancel,
pause, resume, record usage, retry an invoice, switch the payment method, move a customer's clock.

Each function runs inside one processor call after the customer's due work caught up (see
`billing_cycle.run_due`); a refusal raises `SandboxInvalidRequest` before it changes anything.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Final

from gateways.sandbox.processor import validation as check
from gateways.sandbox.processor.billing_books import Books
from gateways.sandbox.processor.billing_cycle import (
    SUBSCRIPTION_CREATE,
    SUBSCRIPTION_UPDATE,
    collect,
    collection_status,
    first_period_end,
    issue_invoice,
    renew,
    require_live,
    run_due,
    usage_in_period,
)
from gateways.sandbox.processor.billing_objects import (
    CUSTOMER,
    INTERVALS,
    PRICE,
    USAGE_RECORD,
    InvoiceLine,
    InvoiceState,
    PriceTerms,
    SandboxCustomer,
    SandboxInvoice,
    SandboxPrice,
    SandboxSubscription,
    SandboxUsageRecord,
    SubscriptionState,
)
from gateways.sandbox.processor.billing_periods import days, prorated
from gateways.sandbox.processor.errors import SandboxInvalidRequest
from gateways.sandbox.processor.objects import new_id

_MAX_TRIAL_DAYS: Final = 730  # Stripe's limit
_MAX_QUANTITY: Final = 10**9


class Proration:
    IMMEDIATE: Final = "immediate"  # switch now, invoice (or credit) the prorated difference at once
    NONE: Final = "none"  # switch now, nothing prorated
    AT_PERIOD_END: Final = "at_period_end"  # switch at the next renewal

    ALL: Final = frozenset({IMMEDIATE, NONE, AT_PERIOD_END})


@dataclass(frozen=True, slots=True)
class PlanChangeQuote:
    """What a plan change does to money, computed once for both the preview and the change itself.

    `proration` is the signed prorated difference; `charge_now` what is invoiced at once (after credit);
    a negative proration is added to `credit_after`, which the next invoices use up.
    """

    proration: int
    charge_now: int
    credit_after: int
    next_invoice_amount: int
    next_invoice_at: int
    currency: str


# -- customers, clocks, prices -----------------------------------------------------------------------


def customer_for(
    books: Books, payql_customer_id: str, email: str | None, gateway_customer: str | None
) -> SandboxCustomer:
    """The customer PayQL remembered, else the one made earlier for its id, else a new one with its own clock."""
    if gateway_customer is not None:
        known = books.get(CUSTOMER, gateway_customer)
        if isinstance(known, SandboxCustomer):
            return known
    found = books.customer_by_payql_id(payql_customer_id)
    if found is not None:
        return found
    customer = SandboxCustomer(
        id=new_id("cus"),
        payql_customer_id=check.text(payql_customer_id, "customer", 255),
        email=email,
        clock_offset=0,
        created=books.now,
    )
    books.put(CUSTOMER, customer, "customer.created")
    return customer


def clock_customer(books: Books, customer_id: str) -> SandboxCustomer:
    """A customer by its sandbox id (`cus_…`) or PayQL's id; a PayQL id never seen gets a customer (and clock)."""
    known = books.get(CUSTOMER, customer_id)
    if isinstance(known, SandboxCustomer):
        return known
    return customer_for(books, customer_id, None, None)


def advance_clock(books: Books, customer: SandboxCustomer, seconds: int) -> int:
    """Move the customer's clock ahead, fire what came due in time order, and return its new now."""
    if isinstance(seconds, bool) or not isinstance(seconds, int) or seconds < 0:
        raise SandboxInvalidRequest("A test clock only moves forward: seconds must be >= 0.", code="parameter_invalid")
    moved = replace(customer, clock_offset=customer.clock_offset + seconds)
    books.put(CUSTOMER, moved)
    now = books.customer_now(moved)
    run_due(books, moved.id, now)
    return now


def price_for(books: Books, terms: PriceTerms) -> SandboxPrice:
    """The sandbox price for these terms: prices are immutable, so new terms for our price make a new one."""
    terms = _checked_terms(terms)
    for price in books.all(PRICE):
        if price.terms == terms:
            return price  # type: ignore[no-any-return]
    price = SandboxPrice(id=new_id("price"), terms=terms, created=books.now)
    books.put(PRICE, price, "price.created")
    return price


def preview_price(books: Books, terms: PriceTerms) -> SandboxPrice:
    """The sandbox price for these terms if one exists, else an unsaved stand-in (for previews)."""
    terms = _checked_terms(terms)
    for price in books.all(PRICE):
        if price.terms == terms:
            return price  # type: ignore[no-any-return]
    return SandboxPrice(id="price_preview", terms=terms, created=books.now)


def _checked_terms(terms: PriceTerms) -> PriceTerms:
    if terms.interval not in INTERVALS:
        raise SandboxInvalidRequest("interval must be day, week, month or year.", code="parameter_invalid")
    if isinstance(terms.interval_count, bool) or not 1 <= terms.interval_count <= 365:
        raise SandboxInvalidRequest("interval_count must be between 1 and 365.", code="parameter_invalid")
    if isinstance(terms.unit_amount, bool) or not 0 <= terms.unit_amount <= check.MAX_AMOUNT:
        raise SandboxInvalidRequest(f"unit_amount must be between 0 and {check.MAX_AMOUNT}.", code="parameter_invalid")
    return replace(terms, currency=check.currency(terms.currency))


# -- subscriptions -----------------------------------------------------------------------------------


def start_subscription(
    books: Books,
    customer: SandboxCustomer,
    price: SandboxPrice,
    payment_method: str,
    trial_days: int,
    metadata: Mapping[str, str],
) -> SandboxSubscription:
    """Create the subscription: a trial charges nothing yet; otherwise the first invoice is charged now."""
    if isinstance(trial_days, bool) or not 0 <= trial_days <= _MAX_TRIAL_DAYS:
        raise SandboxInvalidRequest(
            f"trial_period_days must be between 0 and {_MAX_TRIAL_DAYS}.", code="parameter_invalid"
        )
    now = books.customer_now(customer)
    books.behaviour(payment_method, now)  # an unknown payment method is refused before anything exists
    sub_id = new_id("sub")
    if trial_days:
        trial_end = now + days(trial_days)
        trialing = SandboxSubscription(
            id=sub_id,
            customer=customer.id,
            status=SubscriptionState.TRIALING,
            price=price,
            default_payment_method=payment_method,
            created=now,
            billing_cycle_anchor=trial_end,
            current_period_start=now,
            current_period_end=trial_end,
            updated=0,
            metadata=check.metadata(metadata),
            trial_start=now,
            trial_end=trial_end,
        )
        saved = books.save_subscription(trialing, "customer.subscription.created")
        run_due(books, customer.id, now)  # a trial of three days or less gets its notice at once
        return books.subscription(saved.id)
    sub = SandboxSubscription(
        id=sub_id,
        customer=customer.id,
        status=SubscriptionState.INCOMPLETE,
        price=price,
        default_payment_method=payment_method,
        created=now,
        billing_cycle_anchor=now,
        current_period_start=now,
        current_period_end=first_period_end(price, now),
        updated=0,
        metadata=check.metadata(metadata),
    )
    lines = []
    if not price.metered:
        lines.append(
            InvoiceLine(f"1 x {price.terms.product_name}", price.unit_amount, now, sub.current_period_end, price.id)
        )
    sub, invoice = issue_invoice(books, sub, lines, SUBSCRIPTION_CREATE, now)
    sub = books.save_subscription(sub, "customer.subscription.created")
    collected, _invoice = collect(books, sub, invoice, now)
    if collected.status is not sub.status:
        return books.save_subscription(collected, "customer.subscription.updated")
    return collected


def quote_plan_change(books: Books, sub: SandboxSubscription, price: SandboxPrice, proration: str) -> PlanChangeQuote:
    """Charges and credits of switching to `price` now with `proration`; licensed prices only prorate
    while a paid period runs (not in a trial, not for metered usage, which is billed in arrears)."""
    if proration not in Proration.ALL:
        raise SandboxInvalidRequest("proration_behavior is invalid.", code="parameter_invalid")
    require_live(sub)
    if price.terms.currency != sub.price.terms.currency:
        raise SandboxInvalidRequest("A subscription cannot change currency.", code="currency_mismatch")
    now = books.customer_now(books.customer(sub.customer))
    difference = 0
    if proration == Proration.IMMEDIATE and _prorates(sub, price):
        length = sub.current_period_end - sub.current_period_start
        difference = prorated(price.unit_amount - sub.price.unit_amount, sub.current_period_end - now, length)
    charge_now = max(0, difference - sub.credit_balance)
    credit_after = sub.credit_balance - (difference - charge_now) if difference > 0 else sub.credit_balance - difference
    # The period ending bills usage (in arrears) at the price then in effect, then the next one in advance.
    in_effect = sub.price if proration == Proration.AT_PERIOD_END else price
    arrears = 0
    if in_effect.metered and sub.status is not SubscriptionState.TRIALING:
        arrears = usage_in_period(books, sub) * in_effect.unit_amount
    upfront = 0 if price.metered else price.unit_amount
    next_total = arrears + upfront
    return PlanChangeQuote(
        proration=difference,
        charge_now=charge_now,
        credit_after=credit_after,
        next_invoice_amount=max(0, next_total - credit_after),
        next_invoice_at=sub.current_period_end,
        currency=sub.price.terms.currency,
    )


def _prorates(sub: SandboxSubscription, price: SandboxPrice) -> bool:
    paid_period = sub.status in (SubscriptionState.ACTIVE, SubscriptionState.PAST_DUE, SubscriptionState.PAUSED)
    return paid_period and not sub.price.metered and not price.metered


def change_plan(books: Books, sub: SandboxSubscription, price: SandboxPrice, proration: str) -> SandboxSubscription:
    """Switch the price now or at the period end; a positive proration is invoiced and charged now
    (a decline leaves that invoice open and the subscription `past_due`), a negative one is credit."""
    quote = quote_plan_change(books, sub, price, proration)
    if sub.status is SubscriptionState.INCOMPLETE:
        raise SandboxInvalidRequest("Pay the first invoice before changing the plan.", code="subscription_incomplete")
    if proration == Proration.AT_PERIOD_END:
        return books.save_subscription(replace(sub, pending_price=price), "customer.subscription.updated")
    now = books.customer_now(books.customer(sub.customer))
    old_name = sub.price.terms.product_name
    switched = replace(sub, price=price, pending_price=None)
    if quote.proration > 0:
        line = InvoiceLine(
            f"Prorated change from {old_name} to {price.terms.product_name}",
            quote.proration,
            now,
            sub.current_period_end,
            price.id,
            proration=True,
        )
        switched, invoice = issue_invoice(books, switched, [line], SUBSCRIPTION_UPDATE, now)
        switched, _invoice = collect(books, switched, invoice, now)
    else:
        switched = replace(switched, credit_balance=quote.credit_after)
    return books.save_subscription(switched, "customer.subscription.updated")


def cancel(books: Books, sub: SandboxSubscription, *, at_period_end: bool) -> SandboxSubscription:
    require_live(sub)
    now = books.customer_now(books.customer(sub.customer))
    if at_period_end:
        if sub.status is SubscriptionState.INCOMPLETE:
            raise SandboxInvalidRequest(
                "An incomplete subscription can only be canceled now.", code="parameter_invalid"
            )
        marked = replace(sub, cancel_at_period_end=True, canceled_at=now)
        return books.save_subscription(marked, "customer.subscription.updated")
    ended = replace(sub, status=SubscriptionState.CANCELED, cancel_at_period_end=False, canceled_at=now, ended_at=now)
    return books.save_subscription(ended, "customer.subscription.deleted")


def pause(books: Books, sub: SandboxSubscription) -> SandboxSubscription:
    if sub.status not in (SubscriptionState.ACTIVE, SubscriptionState.PAST_DUE):
        raise SandboxInvalidRequest(
            f"A {sub.status.value} subscription cannot be paused.", code="subscription_unexpected_state"
        )
    now = books.customer_now(books.customer(sub.customer))
    paused = replace(sub, status=SubscriptionState.PAUSED, paused_at=now)
    return books.save_subscription(paused, "customer.subscription.paused", "customer.subscription.updated")


def resume(books: Books, sub: SandboxSubscription) -> SandboxSubscription:
    """Collect again; a period that ended while paused gives way to a new one from now, invoiced now."""
    if sub.status is not SubscriptionState.PAUSED:
        raise SandboxInvalidRequest(
            f"A {sub.status.value} subscription is not paused.", code="subscription_unexpected_state"
        )
    now = books.customer_now(books.customer(sub.customer))
    resumed = replace(sub, status=SubscriptionState.ACTIVE, paused_at=None)
    resumed = replace(resumed, status=collection_status(books, resumed))
    if now >= sub.current_period_end:
        resumed = renew(books, replace(resumed, billing_cycle_anchor=now), now)
    return books.save_subscription(resumed, "customer.subscription.resumed", "customer.subscription.updated")


def report_usage(
    books: Books, sub: SandboxSubscription, payql_price_id: str, quantity: int, timestamp: int
) -> SandboxUsageRecord:
    """Record usage of the subscription's metered price; it counts toward the current period."""
    require_live(sub)
    if sub.price.terms.payql_price_id != payql_price_id:
        raise SandboxInvalidRequest("That price is not on this subscription.", code="resource_missing")
    if not sub.price.metered:
        raise SandboxInvalidRequest("Usage can only be reported for a metered price.", code="price_not_metered")
    for value, name in ((quantity, "quantity"), (timestamp, "timestamp")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise SandboxInvalidRequest(f"{name} must be a non-negative integer.", code="parameter_invalid")
    if quantity > _MAX_QUANTITY:
        raise SandboxInvalidRequest(f"quantity must be at most {_MAX_QUANTITY}.", code="parameter_invalid")
    record = SandboxUsageRecord(
        id=new_id("mbur"),
        subscription=sub.id,
        price=sub.price.id,
        quantity=quantity,
        timestamp=timestamp,
        period_start=sub.current_period_start,
        created=books.now,
    )
    books.put(USAGE_RECORD, record)
    return record


def pay_invoice(books: Books, invoice: SandboxInvoice) -> SandboxInvoice:
    """Retry an open invoice with the subscription's current default payment method; a paid one is
    returned as it is (the retry lost a race with the customer's own payment)."""
    if invoice.status is InvoiceState.PAID:
        return invoice
    if invoice.status is not InvoiceState.OPEN:
        raise SandboxInvalidRequest(
            f"This invoice is {invoice.status.value}; only an open one can be paid.", code="invoice_not_open"
        )
    sub = books.subscription(invoice.subscription)
    now = books.customer_now(books.customer(sub.customer))
    collected, paid = collect(books, sub, invoice, now)
    if collected.status is not sub.status:
        books.save_subscription(collected, "customer.subscription.updated")
    return paid


def set_payment_method(books: Books, sub: SandboxSubscription, payment_method: str) -> SandboxSubscription:
    require_live(sub)
    books.behaviour(payment_method, books.customer_now(books.customer(sub.customer)))
    changed = replace(sub, default_payment_method=payment_method)
    return books.save_subscription(changed, "customer.subscription.updated")
