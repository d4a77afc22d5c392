"""`BraintreeBilling`: the `gateways.billing.BillingGateway` verbs over Braintree's recurring billing (mixed into
`BraintreeGateway`). Wire mapping in `billing_transformers.py`.

- Plans are made in Braintree's Control Panel (monthly or every N months); `PAYQL_BRAINTREE_PLANS` maps each of our
  recurring prices to one (else the plan id is the price id), and the plan is read to check it bills on the
  price's schedule and currency. The subscription's `price` is set to our price, so the plan's own price does not
  matter. Daily, weekly and metered prices cannot be billed by Braintree.
- At most once: the Braintree customer's id is our customer id and the subscription's id is ours, so a repeated
  create finds what the first one made (Braintree refuses a taken id).
- The first charge happens at creation (unless a trial): when it is declined Braintree makes no subscription, so
  the decline is raised (`PaymentDeclined`) and there is nothing to retry against.
- A plan change applies now, with Braintree's proration (IMMEDIATE: the prorated difference is charged at once, a
  downgrade's becomes a credit balance; NONE: no proration). Braintree cannot schedule a change for the period end.
- Cancel at the period end sets the number of billing cycles to the current one: the subscription expires when the
  paid period ends. Pause, resume and usage reports do not exist at Braintree: `NotSupported`.
"""

from __future__ import annotations

import dataclasses
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from domain.money import Money
from domain.statuses import InvoiceStatus
from gateways.braintree.billing_transformers import invoice_result, subscription_result
from gateways.braintree.client import BraintreeClient
from gateways.braintree.errors import refused, validation_errors
from gateways.braintree.transformers import decline_code, decline_message, epoch, major_units, minor_units
from gateways.errors import InvalidGatewayRequest, NotSupported, PaymentDeclined
from gateways.types import (
    InvoiceResult,
    PlanChangeRequest,
    PlanPrice,
    ProrationMode,
    ProrationPreview,
    SubscriptionRequest,
    SubscriptionResult,
    UsageReport,
)

_ID_TAKEN = {"81906", "91609"}
_MONTHS = {"MONTH": 1, "YEAR": 12}
_ALREADY_CANCELED = "81905"


class BraintreeBilling:
    _client: BraintreeClient
    _accounts: dict[str, str]
    _plans: dict[str, str]  # our price id → Braintree plan id

    async def billing_now(self, reference: str) -> int:
        """Real time: Braintree has no test clocks."""
        return int(time.time())

    async def create_subscription(self, request: SubscriptionRequest) -> SubscriptionResult:
        price = request.price
        plan_id = await self._checked_plan(price)
        account = self._account(price.unit_amount)
        customer_id = request.gateway_customer or await self._ensure_customer(request)
        vaulted = await self._client.call(
            lambda sdk: sdk.payment_method.create(
                {
                    "customer_id": customer_id,
                    "payment_method_nonce": request.payment_method,
                    "options": {"make_default": True},
                }
            )
        )
        if not vaulted.is_success:
            raise PaymentDeclined(
                "This card cannot be used. Enter it again.",
                decline_code="card_declined",
                detail=f"braintree vault refused: {vaulted.message}",
            )
        params: dict[str, Any] = {
            "id": request.payql_subscription_id,
            "plan_id": plan_id,
            "price": major_units(price.unit_amount),
            "payment_method_token": vaulted.payment_method.token,
            "merchant_account_id": account,
        }
        if request.trial_days:
            params.update(trial_period=True, trial_duration=request.trial_days, trial_duration_unit="day")
        created = await self._client.call(lambda sdk: sdk.subscription.create(params))
        if created.is_success:
            subscription = created.subscription
        elif created.transaction is not None:
            failed = created.transaction
            raise PaymentDeclined(
                decline_message(failed),
                decline_code=decline_code(failed),
                reference=str(failed.id),
                detail=f"braintree first charge {failed.status}: no subscription was made",
            )
        elif {code for code, _ in validation_errors(created)} & _ID_TAKEN:
            subscription = await self._subscription(request.payql_subscription_id)  # a repeat: the first one made it
        else:
            raise refused(created, reference=None, action="subscription")
        return self._result(subscription, customer_reference=customer_id)

    async def retrieve_subscription(self, reference: str) -> SubscriptionResult:
        return self._result(await self._subscription(reference))

    async def retrieve_invoice(self, reference: str) -> InvoiceResult:
        transaction = await self._client.call(lambda sdk: sdk.transaction.find(reference), reference=reference)
        subscription_id = getattr(transaction, "subscription_id", None)
        if not subscription_id:
            raise InvalidGatewayRequest("This payment is not a subscription charge.", reference=reference)
        subscription = await self._subscription(str(subscription_id))
        return invoice_result(transaction, subscription, str(transaction.currency_iso_code))

    async def preview_plan_change(self, reference: str, price: PlanPrice) -> ProrationPreview:
        """Braintree's proration, computed: the price difference for the days left in the paid period."""
        subscription = await self._subscription(reference)
        currency = price.unit_amount.currency
        old = minor_units(subscription.price, currency)
        start, end = epoch(subscription.billing_period_start_date), epoch(subscription.billing_period_end_date)
        share = Decimal(0)
        if start is not None and end is not None and end > start:
            share = Decimal(max(0, end - int(time.time()))) / Decimal(end - start)
        difference = int(((price.unit_amount.amount - old) * share).to_integral_value(ROUND_HALF_UP))
        return ProrationPreview(
            amount_due_now=Money(max(0, difference), currency),
            next_invoice_amount=Money(max(0, price.unit_amount.amount + min(0, difference)), currency),
            next_invoice_at=epoch(subscription.next_billing_date) or int(time.time()),
        )

    async def change_plan(self, request: PlanChangeRequest) -> SubscriptionResult:
        if request.proration is ProrationMode.AT_PERIOD_END:
            raise NotSupported(
                "Braintree changes plans at once; it cannot schedule a change.", reference=request.reference
            )
        params = {
            "plan_id": await self._checked_plan(request.price),
            "price": major_units(request.price.unit_amount),
            "options": {
                "prorate_charges": request.proration is ProrationMode.IMMEDIATE,
                "revert_subscription_on_proration_failure": True,
            },
        }
        updated = await self._client.call(
            lambda sdk: sdk.subscription.update(request.reference, params), reference=request.reference
        )
        if not updated.is_success:
            raise refused(updated, reference=request.reference, action="plan change")
        return self._result(updated.subscription)

    async def cancel_subscription(
        self, reference: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult:
        if at_period_end:
            subscription = await self._subscription(reference)
            cycles = {"number_of_billing_cycles": subscription.current_billing_cycle}
            done = await self._client.call(lambda sdk: sdk.subscription.update(reference, cycles), reference=reference)
        else:
            done = await self._client.call(lambda sdk: sdk.subscription.cancel(reference), reference=reference)
            if not done.is_success and _ALREADY_CANCELED in {code for code, _ in validation_errors(done)}:
                return await self.retrieve_subscription(reference)  # a repeat
        if not done.is_success:
            raise refused(done, reference=reference, action="cancellation")
        return self._result(done.subscription)

    async def pause_subscription(self, reference: str, *, idempotency_key: str) -> SubscriptionResult:
        raise NotSupported("Braintree subscriptions cannot be paused.", reference=reference)

    async def resume_subscription(self, reference: str, *, idempotency_key: str) -> SubscriptionResult:
        raise NotSupported("Braintree subscriptions cannot be paused or resumed.", reference=reference)

    async def report_usage(self, report: UsageReport) -> str:
        raise NotSupported("Braintree does not bill metered usage.", reference=report.reference)

    async def pay_invoice(self, reference: str, *, idempotency_key: str) -> InvoiceResult:
        """Retry the subscription's failed charge (`subscription.retry_charge`, submitted for settlement).

        At most once: when the subscription owes nothing any more (a retry whose answer was lost, or a later charge
        that collected the balance), its newest successful charge is the answer and nothing is charged again.
        """
        invoice = await self.retrieve_invoice(reference)
        if invoice.status is InvoiceStatus.PAID:
            return invoice
        subscription = await self._subscription(invoice.subscription_reference)
        currency = invoice.amount_due.currency
        newest = (getattr(subscription, "transactions", None) or [None])[0]
        if newest is not None and Decimal(str(subscription.balance)) <= 0 and str(newest.id) != reference:
            collected = invoice_result(newest, subscription, currency)
            if collected.status is InvoiceStatus.PAID:
                return dataclasses.replace(collected, reference=reference)
        amount = major_units(invoice.amount_due)
        retried = await self._client.call(
            lambda sdk: sdk.subscription.retry_charge(invoice.subscription_reference, amount, True), reference=reference
        )
        if retried.transaction is None:
            raise refused(retried, reference=reference, action="payment")
        subscription = await self._subscription(invoice.subscription_reference)
        # The retry is a new transaction; for PayQL it pays (or fails to pay) the same invoice.
        return dataclasses.replace(invoice_result(retried.transaction, subscription, currency), reference=reference)

    async def update_default_payment_method(
        self, reference: str, payment_method: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        subscription = await self._subscription(reference)
        token = subscription.payment_method_token
        current = await self._client.call(lambda sdk: sdk.payment_method.find(token), reference=reference)
        vaulted = await self._client.call(
            lambda sdk: sdk.payment_method.create(
                {
                    "customer_id": current.customer_id,
                    "payment_method_nonce": payment_method,
                    "options": {"make_default": True},
                }
            ),
            reference=reference,
        )
        if not vaulted.is_success:
            raise refused(vaulted, reference=reference, action="payment method")
        new_token = {"payment_method_token": vaulted.payment_method.token}
        updated = await self._client.call(
            lambda sdk: sdk.subscription.update(reference, new_token), reference=reference
        )
        if not updated.is_success:
            raise refused(updated, reference=reference, action="payment method")
        return self._result(updated.subscription)

    # --- plumbing --------------------------------------------------------------------------------------------
    def _plan(self, price: PlanPrice) -> str:
        return self._plans.get(price.price_id, price.price_id)

    async def _checked_plan(self, price: PlanPrice) -> str:
        """The price's plan, read to check that it bills on the price's schedule and currency (a plan mapped to the
        wrong price would bill another schedule than the catalog shows)."""
        if price.metered or price.interval not in _MONTHS:
            raise NotSupported(
                "Braintree bills monthly or yearly prices only.",
                detail=f"price {price.price_id}: {price.interval_count} {price.interval}, metered={price.metered}",
            )
        plan_id = self._plan(price)
        plan = await self._client.call(lambda sdk: sdk.plan.find(plan_id), reference=plan_id)
        months = _MONTHS[price.interval] * price.interval_count
        currency = str(getattr(plan, "currency_iso_code", "") or price.unit_amount.currency)
        if int(plan.billing_frequency) != months or currency != price.unit_amount.currency:
            raise InvalidGatewayRequest(
                "This price cannot be billed: its Braintree plan bills on another schedule.",
                detail=f"plan {plan_id} bills every {plan.billing_frequency} month(s) in {currency}; price "
                f"{price.price_id} every {months} in {price.unit_amount.currency} (PAYQL_BRAINTREE_PLANS)",
            )
        return plan_id

    def _account(self, amount: Money) -> str:
        account = self._accounts.get(amount.currency)
        if account is None:
            raise InvalidGatewayRequest(f"Subscriptions in {amount.currency} are not accepted here.")
        return account

    def _currency_of(self, subscription: Any) -> str:
        """A subscription names no currency: its charges do, else its merchant account (one currency each)."""
        charges = getattr(subscription, "transactions", None) or []
        if charges:
            return str(charges[0].currency_iso_code)
        account = str(getattr(subscription, "merchant_account_id", "") or "")
        for currency, known in self._accounts.items():
            if known == account:
                return currency
        raise InvalidGatewayRequest(
            "The subscription's currency is unknown.",
            detail=f"merchant account {account} is not in PAYQL_BRAINTREE_MERCHANT_ACCOUNTS",
            reference=str(subscription.id),
        )

    def _result(self, subscription: Any, *, customer_reference: str | None = None) -> SubscriptionResult:
        price_of_plan = {plan: price for price, plan in self._plans.items()}
        return subscription_result(
            subscription,
            currency=self._currency_of(subscription),
            price_of_plan=price_of_plan,
            customer_reference=customer_reference,
        )

    async def _subscription(self, reference: str) -> Any:
        return await self._client.call(lambda sdk: sdk.subscription.find(reference), reference=reference)

    async def _ensure_customer(self, request: SubscriptionRequest) -> str:
        """Our customer id is the Braintree customer's: a repeat finds the one the first call made."""
        params = (
            {"id": request.customer_id, "email": request.customer_email}
            if request.customer_email
            else {"id": request.customer_id}
        )
        created = await self._client.call(lambda sdk: sdk.customer.create(params))
        if not created.is_success and not {code for code, _ in validation_errors(created)} & _ID_TAKEN:
            raise refused(created, reference=None, action="customer")
        return request.customer_id
