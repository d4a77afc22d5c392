"""`SandboxBilling`: the sandbox processor's billing engine (subscriptions on per-customer test clocks),
modelled on Stripe Billing. The processor owns one as `processor.billing`.

Each call runs as one processor call (one lock, one commit, events after the commit): it first fires
what came due on the customer's clock, then does its own work; mutating calls are idempotent per key
through the processor's idempotency records. Subscription times are on the customer's test clock, an
offset over the processor's clock that `advance_customer_clock` moves forward; event `created` stays on
the processor's clock so signatures verify. Due work fires when any call about the customer (reads too,
as time passes on Stripe by itself) or a clock advance reaches it; `run_due` catches every customer up.
Nothing here may block the event loop or touch PayQL's database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeVar

from gateways.sandbox.processor import billing_verbs as verbs
from gateways.sandbox.processor.billing_books import Books
from gateways.sandbox.processor.billing_cycle import after_authentication, run_due
from gateways.sandbox.processor.billing_objects import (
    CUSTOMER,
    INVOICE,
    PAYQL_SUBSCRIPTION_ID,
    PriceTerms,
    SandboxCustomer,
    SandboxInvoice,
    SandboxSubscription,
    SandboxUsageRecord,
)
from gateways.sandbox.processor.billing_verbs import PlanChangeQuote, Proration
from gateways.sandbox.processor.objects import JsonDict, SandboxPaymentIntent
from gateways.sandbox.processor.state import Changes

if TYPE_CHECKING:
    from gateways.sandbox.processor.processor import SandboxProcessor

__all__ = ["BilledSubscription", "PlanChangeQuote", "PriceTerms", "Proration", "SandboxBilling"]

_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class BilledSubscription:
    """A subscription with its latest invoice, as one call saw them."""

    subscription: SandboxSubscription
    latest_invoice: SandboxInvoice | None


class SandboxBilling:
    def __init__(self, processor: SandboxProcessor) -> None:
        self._processor = processor

    # -- test clocks ---------------------------------------------------------------------------------

    async def advance_customer_clock(self, customer_id: str, seconds: int) -> int:
        """Move one customer's test clock (`cus_…` or PayQL's customer id) and fire what came due; returns
        its new now. A test control: armed faults never hit it."""

        def advance(books: Books) -> int:
            return verbs.advance_clock(books, verbs.clock_customer(books, customer_id), seconds)

        return await self._processor._transact(self._on_books(advance), writes=True)

    async def customer_now(self, subscription_id: str) -> int:
        """The test clock the subscription is billed on (what came due by then fires first)."""

        def read(books: Books) -> int:
            return books.customer_now(books.customer(self._caught_up(books, subscription_id).customer))

        return await self._processor._call(self._on_books(read))

    async def run_due(self) -> None:
        """Fire what came due for every customer (the processor's own clock moved, or real time passed)."""

        def catch_up(books: Books) -> None:
            customers: list[SandboxCustomer] = books.all(CUSTOMER)
            for customer in customers:
                run_due(books, customer.id, books.customer_now(customer))

        await self._processor._transact(self._on_books(catch_up), writes=True)

    # -- subscriptions -------------------------------------------------------------------------------

    async def create_subscription(
        self,
        *,
        payql_subscription_id: str,
        customer_id: str,
        customer_email: str | None,
        gateway_customer: str | None,
        price: PriceTerms,
        payment_method: str,
        idempotency_key: str,
        trial_days: int = 0,
    ) -> BilledSubscription:
        request: JsonDict = {
            "operation": "create_subscription",
            "payql_subscription_id": payql_subscription_id,
            "customer_id": customer_id,
            "customer_email": customer_email,
            "gateway_customer": gateway_customer,
            "price": repr(price),
            "payment_method": payment_method,
            "trial_days": trial_days,
        }

        def create(books: Books) -> SandboxSubscription:
            customer = verbs.customer_for(books, customer_id, customer_email, gateway_customer)
            run_due(books, customer.id, books.customer_now(customer))
            return verbs.start_subscription(
                books,
                customer,
                verbs.price_for(books, price),
                payment_method,
                trial_days,
                {PAYQL_SUBSCRIPTION_ID: payql_subscription_id},
            )

        return await self._mutate(idempotency_key, request, None, create)

    async def retrieve_subscription(self, subscription_id: str) -> BilledSubscription:
        """The subscription as of its customer's clock now: like time on Stripe, what came due has happened
        (so a read can emit the events of renewals nobody asked about yet)."""

        def read(books: Books) -> BilledSubscription:
            return _billed(books, self._caught_up(books, subscription_id))

        return await self._processor._call(self._on_books(read))

    async def retrieve_invoice(self, invoice_id: str) -> SandboxInvoice:
        def read(books: Books) -> SandboxInvoice:
            self._caught_up(books, books.invoice(invoice_id).subscription)
            return books.invoice(invoice_id)

        return await self._processor._call(self._on_books(read))

    async def preview_plan_change(self, subscription_id: str, price: PriceTerms) -> PlanChangeQuote:
        """What `change_plan(…, Proration.IMMEDIATE)` would charge now, and the next invoice; changes nothing
        (a price not seen before is priced without being created)."""

        def preview(books: Books) -> PlanChangeQuote:
            sub = self._caught_up(books, subscription_id)
            return verbs.quote_plan_change(books, sub, verbs.preview_price(books, price), Proration.IMMEDIATE)

        return await self._processor._call(self._on_books(preview))

    async def change_plan(
        self, subscription_id: str, price: PriceTerms, proration: str, *, idempotency_key: str
    ) -> BilledSubscription:
        request: JsonDict = {
            "operation": "change_plan",
            "subscription": subscription_id,
            "price": repr(price),
            "proration": proration,
        }

        def change(books: Books) -> SandboxSubscription:
            sub = books.subscription(subscription_id)
            return verbs.change_plan(books, sub, verbs.price_for(books, price), proration)

        return await self._mutate(idempotency_key, request, subscription_id, change)

    async def cancel(self, subscription_id: str, *, at_period_end: bool, idempotency_key: str) -> BilledSubscription:
        request: JsonDict = {"operation": "cancel", "subscription": subscription_id, "at_period_end": at_period_end}

        def cancel(books: Books) -> SandboxSubscription:
            return verbs.cancel(books, books.subscription(subscription_id), at_period_end=at_period_end)

        return await self._mutate(idempotency_key, request, subscription_id, cancel)

    async def pause(self, subscription_id: str, *, idempotency_key: str) -> BilledSubscription:
        request: JsonDict = {"operation": "pause", "subscription": subscription_id}

        def pause(books: Books) -> SandboxSubscription:
            return verbs.pause(books, books.subscription(subscription_id))

        return await self._mutate(idempotency_key, request, subscription_id, pause)

    async def resume(self, subscription_id: str, *, idempotency_key: str) -> BilledSubscription:
        request: JsonDict = {"operation": "resume", "subscription": subscription_id}

        def resume(books: Books) -> SandboxSubscription:
            return verbs.resume(books, books.subscription(subscription_id))

        return await self._mutate(idempotency_key, request, subscription_id, resume)

    async def update_default_payment_method(
        self, subscription_id: str, payment_method: str, *, idempotency_key: str
    ) -> BilledSubscription:
        request: JsonDict = {
            "operation": "update_default_payment_method",
            "subscription": subscription_id,
            "payment_method": payment_method,
        }

        def update(books: Books) -> SandboxSubscription:
            return verbs.set_payment_method(books, books.subscription(subscription_id), payment_method)

        return await self._mutate(idempotency_key, request, subscription_id, update)

    async def report_usage(
        self, subscription_id: str, payql_price_id: str, quantity: int, timestamp: int, *, idempotency_key: str
    ) -> SandboxUsageRecord:
        """Record usage once per key: a replay answers the same record and counts nothing again."""
        request: JsonDict = {
            "operation": "report_usage",
            "subscription": subscription_id,
            "price": payql_price_id,
            "quantity": quantity,
            "timestamp": timestamp,
        }

        def report(changes: Changes) -> SandboxUsageRecord:
            books = self._books(changes)
            sub = self._caught_up(books, subscription_id)
            return self._processor._idempotent(
                changes,
                idempotency_key,
                request,
                SandboxUsageRecord,
                lambda _changes: verbs.report_usage(books, sub, payql_price_id, quantity, timestamp),
            )

        return await self._processor._call(report)

    async def pay_invoice(self, invoice_id: str, *, idempotency_key: str) -> SandboxInvoice:
        """One more collection attempt with the subscription's default payment method (PayQL's dunning)."""
        request: JsonDict = {"operation": "pay_invoice", "invoice": invoice_id}

        def pay(changes: Changes) -> SandboxInvoice:
            books = self._books(changes)
            self._caught_up(books, books.invoice(invoice_id).subscription)
            return self._processor._idempotent(
                changes,
                idempotency_key,
                request,
                SandboxInvoice,
                lambda _changes: verbs.pay_invoice(books, books.invoice(invoice_id)),
            )

        return await self._processor._call(pay)

    # -- hooks the processor calls inside its own calls ---------------------------------------------

    def intent_before_authentication(self, changes: Changes, payment_intent_id: str) -> SandboxPaymentIntent | None:
        """The intent as it is once the customer whose invoice it collects caught up (a first invoice that
        expired meanwhile has canceled it), or None when it collects no invoice."""
        books = self._books(changes)
        intent = books.intent(payment_intent_id)
        if intent is None or intent.invoice is None or books.get(INVOICE, intent.invoice) is None:
            return None
        self._caught_up(books, books.invoice(intent.invoice).subscription)
        return books.intent(payment_intent_id)

    def after_authentication(self, changes: Changes, intent: SandboxPaymentIntent) -> None:
        """An invoice's payment intent was authenticated (or failed to be): settle the invoice."""
        after_authentication(self._books(changes), intent)

    # -- machinery -----------------------------------------------------------------------------------

    def _books(self, changes: Changes) -> Books:
        return Books(self._processor._state, changes, self._processor._behaviour)

    def _on_books(self, operation: Callable[[Books], _T]) -> Callable[[Changes], _T]:
        return lambda changes: operation(self._books(changes))

    def _caught_up(self, books: Books, subscription_id: str) -> SandboxSubscription:
        """The subscription after its customer's due work fired."""
        customer = books.customer(books.subscription(subscription_id).customer)
        run_due(books, customer.id, books.customer_now(customer))
        return books.subscription(subscription_id)

    async def _mutate(
        self,
        idempotency_key: str,
        request: JsonDict,
        subscription_id: str | None,
        apply: Callable[[Books], SandboxSubscription],
    ) -> BilledSubscription:
        """Catch the customer up, then run `apply` once per key; answer it with its latest invoice."""

        def operation(changes: Changes) -> BilledSubscription:
            books = self._books(changes)
            if subscription_id is not None:
                self._caught_up(books, subscription_id)
            sub = self._processor._idempotent(
                changes, idempotency_key, request, SandboxSubscription, lambda _changes: apply(books)
            )
            return _billed(books, sub)

        return await self._processor._call(operation)


def _billed(books: Books, sub: SandboxSubscription) -> BilledSubscription:
    invoice = None if sub.latest_invoice is None else books.invoice(sub.latest_invoice)
    return BilledSubscription(sub, invoice)
