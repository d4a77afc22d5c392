"""`BraintreeGateway`: PayQL's `PaymentGateway` (and `BillingGateway`) over Braintree's transactions, disputes and
subscriptions (official SDK 4.48).

The SPA tokenizes the card with Drop-in or Hosted Fields (authorized by a client token, see `package.py`) and sends
the nonce as `paymentMethod`; with 3-D Secure, the SPA verifies the card first and the nonce carries the result.
`charge` is a `sale`: submitted for settlement at once (automatic capture) or authorized only, then `capture`
submits it for settlement (for the whole or a lower amount). `void` cancels an authorization; `refund` credits a
settled transaction.

3-D Secure: with `three_d_secure_required`, Braintree rejects a sale whose nonce carries no liability shift
(`gateway_rejected`, reason `three_d_secure`). A rejected sale cannot be resumed, so this is a decline with the code
`authentication_required` (the GraphQL AUTHENTICATION_REQUIRED), not REQUIRES_ACTION with a `nextAction`: nothing
waits on the server; the SPA verifies the card (`threeDSecure.verifyCard`) and checks out again with the new nonce.

At most once: Braintree's XML API has no idempotency key, so our payment id is the sale's `order_id`, and `charge`
first searches the transactions by that order id: a repeated `charge` (a retry after a lost answer, a second
process resuming the payment) finds the sale the first one made instead of charging again. A refund's `order_id`
is derived from its idempotency key, and the sale's refunds are read before refunding, so a repeat answers the
refund the first one made. Capture and void read the transaction first and answer a repeat with the state reached.

Subscriptions are in `billing.py`. Webhooks (`webhooks.py`) are verified with the SDK's parser. Never touches
PayQL's database or settings.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from domain.statuses import CaptureMethod, PaymentStatus
from gateways.braintree.billing import BraintreeBilling
from gateways.braintree.client import BraintreeClient
from gateways.braintree.errors import NONCE_PROBLEMS, refused, validation_errors
from gateways.braintree.sdk import braintree
from gateways.braintree.transformers import (
    CAPTURED_STATUSES,
    SETTLED_STATUSES,
    decline_code,
    decline_message,
    dispute_result,
    major_units,
    payment_result,
    refund_order_id,
    refund_result,
)
from gateways.braintree.webhooks import BraintreeDeliveryVerifier, interpret, stored_payload
from gateways.errors import InvalidGatewayRequest, NotSupported, PaymentDeclined
from gateways.types import (
    PAYQL_PAYMENT_ID,
    CaptureRequest,
    ChargeRequest,
    DisputeEvidence,
    DisputeResult,
    EventEffect,
    PaymentResult,
    RefundRequest,
    RefundResult,
    VerifiedEvent,
    VoidRequest,
    WebhookDelivery,
)

# How many of the newest sales `list_payments` reads (one search page each of ids, then the transactions).
LIST_LIMIT = 500


class BraintreeGateway(BraintreeBilling):
    name: str = "braintree"

    def __init__(
        self,
        client: BraintreeClient,
        *,
        merchant_accounts: Mapping[str, str],
        webhook_keys: Sequence[tuple[str, str]],
        three_d_secure_required: bool = False,
        plans: Mapping[str, str] | None = None,
    ) -> None:
        self._client = client
        self._plans = dict(plans or {})
        self._accounts = {currency.upper(): account for currency, account in merchant_accounts.items()}
        self._three_d_secure_required = three_d_secure_required
        self._verifier = BraintreeDeliveryVerifier(webhook_keys)

    # --- payments --------------------------------------------------------------------------------------------
    async def charge(self, request: ChargeRequest) -> PaymentResult:
        account = self._accounts.get(request.amount.currency)
        if account is None:
            raise InvalidGatewayRequest(
                f"Payments in {request.amount.currency} are not accepted here.",
                detail=f"PAYQL_BRAINTREE_MERCHANT_ACCOUNTS names no account for {request.amount.currency}",
            )
        payment_id = request.metadata.get(PAYQL_PAYMENT_ID)
        if payment_id:
            earlier = await self._sale_of_order(payment_id)
            if earlier is not None:
                return await self._answer(earlier, request)
        params: dict[str, Any] = {
            "amount": major_units(request.amount),
            "payment_method_nonce": request.payment_method,
            "merchant_account_id": account,
            "options": {"submit_for_settlement": request.capture_method is CaptureMethod.AUTOMATIC},
        }
        if payment_id:
            params["order_id"] = payment_id
        if self._three_d_secure_required:
            params["options"]["three_d_secure"] = {"required": True}
        result = await self._client.call(lambda sdk: sdk.transaction.sale(params))
        if result.transaction is None:
            codes = {code for code, _ in validation_errors(result)}
            if codes & NONCE_PROBLEMS:
                raise PaymentDeclined(
                    "This card cannot be used. Enter it again.",
                    decline_code="card_declined",
                    detail=f"braintree sale refused: {','.join(sorted(codes))}",
                )
            raise refused(result, reference=None, action="payment")
        return await self._answer(result.transaction, request)

    async def _answer(self, transaction: Any, request: ChargeRequest) -> PaymentResult:
        """The sale's result, or its decline raised; a found sale must be for the requested amount."""
        result = payment_result(transaction, await self._refunds_of(transaction))
        if result.amount != request.amount:
            raise InvalidGatewayRequest(
                "This payment was already made for another amount.",
                detail=f"sale {result.reference} is for {result.amount}, the charge for {request.amount}",
                reference=result.reference,
            )
        if result.status is PaymentStatus.FAILED:
            raise PaymentDeclined(
                decline_message(transaction),
                decline_code=decline_code(transaction),
                detail=f"braintree {transaction.status} {transaction.processor_response_code} "
                f"{transaction.gateway_rejection_reason or ''}".strip(),
                reference=result.reference,
            )
        return result

    async def retrieve(self, reference: str) -> PaymentResult:
        transaction = await self._find(reference)
        return payment_result(transaction, await self._refunds_of(transaction))

    async def complete(self, reference: str, *, capture: bool, idempotency_key: str) -> PaymentResult:
        raise NotSupported(
            "This payment needs no completion.",
            detail="a Braintree sale is authorized or captured when it is made; the shopper approves nothing after",
            reference=reference,
        )

    async def capture(self, request: CaptureRequest) -> PaymentResult:
        """Submit the authorization for settlement, for its whole amount or less (the rest is released)."""
        if not request.final:
            raise NotSupported(
                "Capturing this payment in several parts is not supported.",
                detail="Braintree's partial settlements create child transactions PayQL does not track",
                reference=request.reference,
            )
        transaction = await self._find(request.reference)
        if str(transaction.status) in CAPTURED_STATUSES:
            return payment_result(transaction, await self._refunds_of(transaction))  # a repeat: already captured
        amount = major_units(request.amount)
        result = await self._client.call(
            lambda sdk: sdk.transaction.submit_for_settlement(request.reference, amount), reference=request.reference
        )
        if not result.is_success:
            raise refused(result, reference=request.reference, action="capture")
        return payment_result(result.transaction)

    async def void(self, request: VoidRequest) -> PaymentResult:
        transaction = await self._find(request.reference)
        status = str(transaction.status)
        if status == "voided":
            return payment_result(transaction)  # a repeat
        if status in CAPTURED_STATUSES:
            # Braintree could still void a sale submitted for settlement, but for PayQL it is captured: refund it.
            raise InvalidGatewayRequest(
                "This payment is captured: refund it instead.",
                detail=f"transaction {request.reference} is {status}",
                reference=request.reference,
            )
        result = await self._client.call(
            lambda sdk: sdk.transaction.void(request.reference), reference=request.reference
        )
        if not result.is_success:
            raise refused(result, reference=request.reference, action="cancellation")
        return payment_result(result.transaction)

    async def refund(self, request: RefundRequest) -> RefundResult:
        transaction = await self._find(request.reference)
        if str(transaction.status) not in SETTLED_STATUSES:
            raise InvalidGatewayRequest(
                "This payment is not settled yet: refund it after settlement (usually within a day).",
                detail=f"transaction {request.reference} is {transaction.status}; Braintree refunds settled ones only",
                reference=request.reference,
            )
        if request.amount.currency != str(transaction.currency_iso_code):
            raise InvalidGatewayRequest("The refund's currency is not the payment's.", reference=request.reference)
        # The refund's own order_id comes from our idempotency key: a repeat finds the credit the first one made.
        marker = refund_order_id(request.idempotency_key)
        earlier = [credit for credit in await self._refunds_of(transaction) if credit.order_id == marker]
        if earlier:
            return refund_result(earlier[0])
        options = {"amount": major_units(request.amount), "order_id": marker}
        result = await self._client.call(
            lambda sdk: sdk.transaction.refund(request.reference, options), reference=request.reference
        )
        if result.transaction is None:
            raise refused(result, reference=request.reference, action="refund")
        return refund_result(result.transaction)

    async def find_payment(self, payql_payment_id: str) -> PaymentResult | None:
        """The sale whose `order_id` is our payment id (declined ones too), found by a transaction search."""
        transaction = await self._sale_of_order(payql_payment_id)
        if transaction is None:
            return None
        return payment_result(transaction, await self._refunds_of(transaction))

    async def list_payments(self, created_gte: int) -> list[PaymentResult]:
        since = datetime.fromtimestamp(created_gte, UTC).replace(tzinfo=None)

        def search(sdk: Any) -> list[Any]:
            found = sdk.transaction.search(
                braintree.TransactionSearch.created_at >= since,
                braintree.TransactionSearch.type == braintree.Transaction.Type.Sale,
            )
            return [t for _, t in zip(range(LIST_LIMIT), found.items, strict=False)]

        transactions = await self._client.call(search)
        return [payment_result(t, await self._refunds_of(t)) for t in transactions]

    # --- disputes --------------------------------------------------------------------------------------------
    async def retrieve_dispute(self, reference: str) -> DisputeResult:
        return dispute_result(await self._client.call(lambda sdk: sdk.dispute.find(reference), reference=reference))

    async def submit_dispute_evidence(self, reference: str, evidence: DisputeEvidence) -> DisputeResult:
        """Add each text field as text evidence, then finalize: the dispute goes to the issuer (UNDER_REVIEW)."""
        texts = [f"{name.replace('_', ' ')}: {value}" for name, value in _fields(evidence) if value.strip()]
        if not texts:
            raise InvalidGatewayRequest("No evidence to submit.", reference=reference)
        for text in texts:
            added = await self._client.call(_text_evidence(reference, text), reference=reference)
            if not added.is_success:
                raise refused(added, reference=reference, action="evidence")
        finalized = await self._client.call(lambda sdk: sdk.dispute.finalize(reference), reference=reference)
        if not finalized.is_success:
            raise refused(finalized, reference=reference, action="evidence")
        return await self.retrieve_dispute(reference)

    # --- webhooks --------------------------------------------------------------------------------------------
    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        return await self._verifier.verify_webhook(delivery)

    def stored_payload(self, body: str) -> dict[str, Any]:
        return stored_payload(body)

    def interpret_event(self, event: VerifiedEvent) -> list[EventEffect]:
        return interpret(event)

    async def aclose(self) -> None:
        self._client.close()

    # --- plumbing --------------------------------------------------------------------------------------------
    async def _find(self, reference: str) -> Any:
        return await self._client.call(lambda sdk: sdk.transaction.find(reference), reference=reference)

    async def _refunds_of(self, transaction: Any) -> list[Any]:
        ids = [str(i) for i in getattr(transaction, "refund_ids", None) or []]
        return [await self._find(refund_id) for refund_id in ids]

    async def _sale_of_order(self, payql_payment_id: str) -> Any | None:
        def search(sdk: Any) -> list[Any]:
            found = sdk.transaction.search(
                braintree.TransactionSearch.order_id == payql_payment_id,
                braintree.TransactionSearch.type == braintree.Transaction.Type.Sale,
            )
            return list(found.items)

        sales = await self._client.call(search)
        # One sale per payment id; should there be more, a successful one is the truth.
        succeeded = [s for s in sales if payment_result(s).status is not PaymentStatus.FAILED]
        return (succeeded or sales or [None])[0]


def _text_evidence(reference: str, text: str) -> Callable[[Any], Any]:
    return lambda sdk: sdk.dispute.add_text_evidence(reference, text)


def _fields(evidence: DisputeEvidence) -> list[tuple[str, str]]:
    return [(name, str(getattr(evidence, name))) for name in DisputeEvidence.__dataclass_fields__]
