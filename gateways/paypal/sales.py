"""`PayPalSales`: reading and refunding the v1 *sales* PayPal subscriptions bill each cycle with (mixed into
`PayPalGateway`, whose `retrieve`/`refund` hand a `SALE_PREFIX` reference here).

A subscription payment is mirrored as an ordinary PayQL payment whose reference is the sale; Orders v2 cannot
read or refund it, so these go through the v1 sale endpoints (`rest.py`; the SDK has no controller for them).
A refund carries a PayPal-Request-Id derived from the caller's key, so a retry after a lost answer refunds once.
Never touches PayQL's database or settings.
"""

from __future__ import annotations

from typing import Any

from gateways.paypal.billing_transformers import SALE_PREFIX, sale_amount_wire, sale_payment_result, sale_refund_result
from gateways.paypal.calls import PayPalCalls, mapped
from gateways.paypal.transformers import request_id
from gateways.types import PaymentResult, RefundRequest, RefundResult


def is_sale(reference: str) -> bool:
    return reference.startswith(SALE_PREFIX)


class PayPalSales(PayPalCalls):
    async def _retrieve_sale(self, reference: str) -> PaymentResult:
        sale_id = reference.removeprefix(SALE_PREFIX)
        sale = await self._rest("GET", f"/v1/payments/sale/{sale_id}", reference=reference)
        return mapped(sale_payment_result, sale, reference)

    async def _is_sale(self, transaction_id: str) -> bool:
        """Whether a disputed transaction is a sale (a subscription's) rather than a capture."""
        return (
            await self._rest_or_none("GET", f"/v1/payments/sale/{transaction_id}", reference=transaction_id) is not None
        )

    async def _refund_sale(self, request: RefundRequest) -> RefundResult:
        """`POST /v1/payments/sale/{id}/refund` for `amount`; PayPal refuses more than is left unrefunded."""
        sale_id = request.reference.removeprefix(SALE_PREFIX)
        rid = request_id("refund", request.idempotency_key)
        body: dict[str, Any] = {"amount": sale_amount_wire(request.amount)}
        if request.reason:
            body["description"] = request.reason[:255]
        refund = await self._rest(
            "POST", f"/v1/payments/sale/{sale_id}/refund", reference=request.reference, body=body, request_id=rid
        )
        return mapped(sale_refund_result, refund, request.reference)
