"""`SandboxBillingAdapter`: the `BillingGateway` half of `SandboxGateway`, over the processor's billing engine.

It calls `processor.billing`, maps results through `billing_transformers.py` and raises only
`gateways.errors`. Billing calls never raise a decline (a declined invoice is a result), so only refusals,
idempotency conflicts and outages are translated. It never touches PayQL's database or settings.
"""

from __future__ import annotations

from gateways.sandbox.billing_transformers import (
    billed_result,
    invoice_result,
    price_terms,
    proration,
    proration_preview,
)
from gateways.sandbox.error_translation import translated
from gateways.sandbox.processor import SandboxProcessor
from gateways.types import (
    InvoiceResult,
    PlanChangeRequest,
    PlanPrice,
    ProrationPreview,
    SubscriptionRequest,
    SubscriptionResult,
    UsageReport,
)


class SandboxBillingAdapter:
    _processor: SandboxProcessor
    _routes_url: str

    async def advance_customer_clock(self, customer_id: str, seconds: int) -> int:
        """Test control: move one customer's test clock (ours or the sandbox's id); returns its new now."""
        return await translated(self._processor.billing.advance_customer_clock(customer_id, seconds))

    async def billing_now(self, reference: str) -> int:
        return await translated(self._processor.billing.customer_now(reference), reference=reference)

    async def create_subscription(self, request: SubscriptionRequest) -> SubscriptionResult:
        billed = await translated(
            self._processor.billing.create_subscription(
                payql_subscription_id=request.payql_subscription_id,
                customer_id=request.customer_id,
                customer_email=request.customer_email,
                gateway_customer=request.gateway_customer,
                price=price_terms(request.price),
                payment_method=request.payment_method,
                idempotency_key=request.idempotency_key,
                trial_days=request.trial_days,
            )
        )
        return billed_result(billed, routes_url=self._routes_url)

    async def retrieve_subscription(self, reference: str) -> SubscriptionResult:
        billed = await translated(self._processor.billing.retrieve_subscription(reference), reference=reference)
        return billed_result(billed, routes_url=self._routes_url)

    async def retrieve_invoice(self, reference: str) -> InvoiceResult:
        invoice = await translated(self._processor.billing.retrieve_invoice(reference), reference=reference)
        return invoice_result(invoice, routes_url=self._routes_url)

    async def preview_plan_change(self, reference: str, price: PlanPrice) -> ProrationPreview:
        quote = await translated(
            self._processor.billing.preview_plan_change(reference, price_terms(price)), reference=reference
        )
        return proration_preview(quote)

    async def change_plan(self, request: PlanChangeRequest) -> SubscriptionResult:
        billed = await translated(
            self._processor.billing.change_plan(
                request.reference,
                price_terms(request.price),
                proration(request.proration),
                idempotency_key=request.idempotency_key,
            ),
            reference=request.reference,
        )
        return billed_result(billed, routes_url=self._routes_url)

    async def cancel_subscription(
        self, reference: str, *, at_period_end: bool, idempotency_key: str
    ) -> SubscriptionResult:
        billed = await translated(
            self._processor.billing.cancel(reference, at_period_end=at_period_end, idempotency_key=idempotency_key),
            reference=reference,
        )
        return billed_result(billed, routes_url=self._routes_url)

    async def pause_subscription(self, reference: str, *, idempotency_key: str) -> SubscriptionResult:
        billed = await translated(
            self._processor.billing.pause(reference, idempotency_key=idempotency_key), reference=reference
        )
        return billed_result(billed, routes_url=self._routes_url)

    async def resume_subscription(self, reference: str, *, idempotency_key: str) -> SubscriptionResult:
        billed = await translated(
            self._processor.billing.resume(reference, idempotency_key=idempotency_key), reference=reference
        )
        return billed_result(billed, routes_url=self._routes_url)

    async def report_usage(self, report: UsageReport) -> str:
        record = await translated(
            self._processor.billing.report_usage(
                report.reference,
                report.price_id,
                report.quantity,
                report.timestamp,
                idempotency_key=report.idempotency_key,
            ),
            reference=report.reference,
        )
        return record.id

    async def pay_invoice(self, reference: str, *, idempotency_key: str) -> InvoiceResult:
        invoice = await translated(
            self._processor.billing.pay_invoice(reference, idempotency_key=idempotency_key), reference=reference
        )
        return invoice_result(invoice, routes_url=self._routes_url)

    async def update_default_payment_method(
        self, reference: str, payment_method: str, *, idempotency_key: str
    ) -> SubscriptionResult:
        billed = await translated(
            self._processor.billing.update_default_payment_method(
                reference, payment_method, idempotency_key=idempotency_key
            ),
            reference=reference,
        )
        return billed_result(billed, routes_url=self._routes_url)
