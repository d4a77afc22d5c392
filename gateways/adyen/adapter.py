"""`AdyenGateway`: PayQL's `PaymentGateway` over Adyen's Checkout API v72 (the official `Adyen` SDK 16.x).

- `charge` sends `/payments` with the `paymentMethod` Drop-in / Components produced (encrypted card fields; a
  clear card number is refused before any call). An action (3-D Secure, a redirect) is REQUIRES_ACTION with the
  action as `nextAction`; the SPA sends back `redirectResult` / `threeDSResult` with `completePayment`, and
  `accept_shopper_return` submits it to `/payments/details`, believing only Adyen's answer about *this*
  payment (a refusal there, such as a failed challenge, is the payment's FAILED outcome). Manual capture is
  `additionalData.manualCapture`; automatic is an immediate capture (`captureDelayHours` 0), so an Authorised
  automatic payment is PAID.
- Captures, cancellations and refunds are asynchronous at Adyen: the API only answers `received`, and the
  CAPTURE / CANCELLATION / REFUND notification says later whether it happened. So `capture` and `void` answer
  the payment as it still is (AUTHORIZED, `gateway_status` "capture:received" / "cancel:received") and PayQL
  moves it only when the signed notification comes (`notifications.py`); `refund` answers a PENDING refund.
  Nothing is shown as done before Adyen says so, so a refused capture has nothing to undo.
- Adyen has no API to read a payment, find one by our reference or list payments: `retrieve`, `find_payment`
  and `list_payments` raise `NotSupported` (reconciliation then leaves the payment to the notifications, which
  Adyen retries until acknowledged, and to an operator replaying them from the Customer Area).
- Every call carries an `Idempotency-Key` derived from our own key (`transformers.idempotency_key`).
- Stored cards: our customer id is Adyen's `shopperReference` (`ensure_customer`, a `CustomerDirectory` without a
  call). A card the shopper asks to store (`storePaymentMethod`) is stored under it for card-on-file use, and a
  stored card (`storedPaymentMethodId`) is charged as a shopper-present `CardOnFile` payment.
- Disputes come from the chargeback notifications. `submit_dispute_evidence` defends one through the Disputes API
  (v30): `retrieveApplicableDefenseReasons`, a reason the evidence can serve and its documents as PDFs
  (`defense.py`), `supplyDefenseDocument`, `defendDispute`. Adyen answers these with
  `disputeServiceResult.success`; false is a refusal. The outcome still comes from the notifications
  (CHARGEBACK_REVERSED, SECOND_CHARGEBACK, ...). `retrieve_dispute` raises `NotSupported`: the Disputes API has no
  read, and the adapter keeps nothing.

No subscriptions: Adyen has no billing engine (the package declares billing=False). Never touches PayQL's
database or settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from Adyen.client import AdyenResult

from domain.money import Money
from domain.statuses import CaptureMethod, DisputeStatus, PaymentStatus
from gateways.adyen import defense
from gateways.adyen.client import AdyenCalls
from gateways.adyen.errors import translate
from gateways.adyen.notifications import NotificationVerifier, notification_effects
from gateways.adyen.transformers import (
    decline_code,
    parse_payment_method,
    payment_request,
    payment_result,
    refund_status,
)
from gateways.adyen.transformers import idempotency_key as adyen_key
from gateways.errors import (
    GatewayError,
    GatewayUnavailable,
    InvalidGatewayRequest,
    NotSupported,
    PaymentDeclined,
    ShopperReturnRejected,
)
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

# What the SPA may send back from Drop-in after an action (one of them).
RETURN_FIELDS = ("redirectResult", "threeDSResult")
# Adyen's cancel answer states no amount (and a VoidRequest carries none): the result claims zero, which the
# core never reads (it applies statuses and the captured/refunded amounts, which only grow).
_UNSTATED = Money(0, "EUR")
_NO_READ = (
    "Adyen's Checkout API has no call to read, find or list payments; its notifications are the record "
    "(resend missed ones from the Customer Area)"
)


class AdyenGateway:
    name: str = "adyen"

    def __init__(
        self,
        api_key: str,
        merchant_account: str,
        *,
        hmac_keys: Sequence[str],
        notification_username: str,
        notification_password: str,
        api_base: str | None = None,
        live: bool = False,
        live_endpoint_prefix: str | None = None,
        timeout: int = 30,
        max_concurrency: int = 8,
    ) -> None:
        self._merchant_account = merchant_account
        self._calls = AdyenCalls(
            api_key,
            api_base=api_base,
            live=live,
            live_endpoint_prefix=live_endpoint_prefix,
            timeout=timeout,
            max_concurrency=max_concurrency,
        )
        self._verifier = NotificationVerifier(hmac_keys, notification_username, notification_password)

    # --- payments --------------------------------------------------------------------------------------------
    async def charge(self, request: ChargeRequest) -> PaymentResult:
        sent = parse_payment_method(request.payment_method)
        body = payment_request(request, self._merchant_account, sent)
        key = adyen_key(request.idempotency_key)
        answer = await self._call(lambda api: api.payments_api.payments(body, idempotency_key=key), None)
        return self._answered(
            answer,
            amount=request.amount,
            manual=request.capture_method is CaptureMethod.MANUAL,
            payql_payment_id=request.metadata.get(PAYQL_PAYMENT_ID),
        )

    async def accept_shopper_return(
        self, reference: str, returned: Mapping[str, str], *, capture: bool, idempotency_key: str
    ) -> PaymentResult:
        """Submit the `redirectResult` / `threeDSResult` Drop-in handed the SPA to `/payments/details`. Adyen
        verifies it (it is opaque to us); an answer about another payment, or Adyen's refusal of the value,
        is `ShopperReturnRejected`. `capture` was fixed by the `/payments` call and is only read here."""
        given = {name: value for name, value in returned.items() if name in RETURN_FIELDS and value}
        if len(given) != 1 or set(returned) - set(RETURN_FIELDS):
            raise ShopperReturnRejected(
                "Send back exactly one of redirectResult or threeDSResult.",
                detail=f"returned names {sorted(returned)}",
                reference=reference,
            )
        body = {"details": given}
        key = adyen_key(idempotency_key)
        try:
            answer = await self._call(
                lambda api: api.payments_api.payments_details(body, idempotency_key=key), reference
            )
        except InvalidGatewayRequest as refused:
            raise ShopperReturnRejected(
                "The payment provider did not accept the returned values.", detail=refused.detail, reference=reference
            ) from refused
        message = answer.message or {}
        if message.get("pspReference") != reference:
            raise ShopperReturnRejected(
                "The returned values belong to another payment.",
                detail=f"/payments/details answered for {message.get('pspReference')}, not {reference}",
                reference=reference,
            )
        amount = message.get("amount") or {}
        return self._answered(
            answer,
            amount=Money(int(amount.get("value", 0)), str(amount.get("currency", ""))),
            manual=not capture,
            payql_payment_id=message.get("merchantReference"),
            declines_raise=False,
        )

    async def retrieve(self, reference: str) -> PaymentResult:
        raise NotSupported("Reading an Adyen payment is not supported.", detail=_NO_READ, reference=reference)

    async def complete(self, reference: str, *, capture: bool, idempotency_key: str) -> PaymentResult:
        raise NotSupported(
            "Adyen payments have no separate approval step.",
            detail="a shopper's action is finished with accept_shopper_return (/payments/details)",
            reference=reference,
        )

    async def capture(self, request: CaptureRequest) -> PaymentResult:
        """Ask Adyen to capture; the payment stays AUTHORIZED until the CAPTURE notification confirms it."""
        body = {
            "amount": {"value": request.amount.amount, "currency": request.amount.currency},
            "merchantAccount": self._merchant_account,
            "reference": request.idempotency_key[:80],
        }
        key = adyen_key(request.idempotency_key)
        await self._call(
            lambda api: api.modifications_api.capture_authorised_payment(body, request.reference, idempotency_key=key),
            request.reference,
        )
        return _unchanged(request.reference, request.amount, "capture:received")

    async def void(self, request: VoidRequest) -> PaymentResult:
        """Ask Adyen to cancel; the payment is CANCELED only when the CANCELLATION notification confirms it."""
        body = {"merchantAccount": self._merchant_account, "reference": request.idempotency_key[:80]}
        key = adyen_key(request.idempotency_key)
        await self._call(
            lambda api: api.modifications_api.cancel_authorised_payment_by_psp_reference(
                body, request.reference, idempotency_key=key
            ),
            request.reference,
        )
        return _unchanged(request.reference, _UNSTATED, "cancel:received")

    async def refund(self, request: RefundRequest) -> RefundResult:
        """Ask Adyen to refund: a PENDING refund, settled by the REFUND (or REFUND_FAILED) notification."""
        body: dict[str, Any] = {
            "amount": {"value": request.amount.amount, "currency": request.amount.currency},
            "merchantAccount": self._merchant_account,
            "reference": request.idempotency_key[:80],
        }
        if request.reason:
            body["merchantRefundReason"] = "OTHER"
        key = adyen_key(request.idempotency_key)
        answer = await self._call(
            lambda api: api.modifications_api.refund_captured_payment(body, request.reference, idempotency_key=key),
            request.reference,
        )
        message = answer.message or {}
        return RefundResult(
            reference=str(message["pspReference"]),
            payment_reference=request.reference,
            status=refund_status(str(message.get("status", ""))),
            amount=request.amount,
            gateway_status=str(message.get("status", "")),
        )

    async def find_payment(self, payql_payment_id: str) -> PaymentResult | None:
        """Never None (that would say Adyen never saw the payment): Adyen cannot be asked."""
        raise NotSupported("Finding an Adyen payment is not supported.", detail=_NO_READ)

    async def list_payments(self, created_gte: int) -> list[PaymentResult]:
        raise NotSupported("Listing Adyen payments is not supported.", detail=_NO_READ)

    # --- customers -------------------------------------------------------------------------------------------
    async def ensure_customer(self, customer_id: str, email: str | None) -> str:
        """Adyen keeps no customer object: the `shopperReference` a card is stored under is ours, our customer
        id (no personal data), so there is nothing to create."""
        return customer_id

    # --- disputes --------------------------------------------------------------------------------------------
    async def retrieve_dispute(self, reference: str) -> DisputeResult:
        raise NotSupported(
            "Reading an Adyen dispute is not supported.",
            detail="Adyen's Disputes API cannot read a dispute; its chargeback notifications are the record",
            reference=reference,
        )

    async def submit_dispute_evidence(self, reference: str, evidence: DisputeEvidence) -> DisputeResult:
        """Defend the dispute (`reference`: its PSP reference) with documents written from `evidence`; the answer
        is the dispute UNDER_REVIEW (the only part the caller reads). A reason the evidence cannot serve is
        `NotSupported` naming what Adyen wants; Adyen's refusal of a step is `InvalidGatewayRequest`.

        The documents and the defense are sent with Idempotency-Keys derived from the dispute and the evidence,
        so the same submission repeated after a lost answer replays at Adyen rather than acting twice."""
        dispute = {"merchantAccountCode": self._merchant_account, "disputePspReference": reference}
        answer = await self._dispute_step(
            "retrieveApplicableDefenseReasons", lambda api: api.retrieve_applicable_defense_reasons(dispute), reference
        )
        chosen = defense.choose_defense(answer.get("defenseReasons") or [], evidence, dispute=reference)
        if chosen.document_types:
            supplied = {**dispute, "defenseDocuments": defense.documents(chosen, evidence, dispute=reference)}
            key = _defense_key(reference, evidence, "supply")
            await self._dispute_step(
                "supplyDefenseDocument",
                lambda api: api.supply_defense_document(supplied, idempotency_key=key),
                reference,
            )
        defended = {**dispute, "defenseReasonCode": chosen.reason_code}
        key = _defense_key(reference, evidence, "defend")
        await self._dispute_step(
            "defendDispute", lambda api: api.defend_dispute(defended, idempotency_key=key), reference
        )
        return DisputeResult(
            reference=reference,
            payment_reference="",  # not in the Disputes API's answers; the caller reads only the status
            status=DisputeStatus.UNDER_REVIEW,
            amount=_UNSTATED,
            reason="",  # the chargeback's reason is the notifications'; the defense's is in gateway_status
            gateway_status=f"defended:{chosen.reason_code}",
        )

    # --- webhooks --------------------------------------------------------------------------------------------
    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        return await self._verifier.verify_webhook(delivery)

    def interpret_event(self, event: VerifiedEvent) -> list[EventEffect]:
        return notification_effects(event)

    async def aclose(self) -> None:
        return None  # the SDK opens a connection per call (requests.request); nothing stays open

    # --- plumbing --------------------------------------------------------------------------------------------
    async def _dispute_step(self, step: str, fn: Callable[[Any], AdyenResult], reference: str) -> dict[str, Any]:
        """One Disputes API call's answer; `disputeServiceResult.success` false is Adyen's refusal."""
        try:
            answer = await self._calls.call_disputes(fn)
        except GatewayError:
            raise
        except Exception as exc:  # as in `_call`
            raise translate(exc, reference=reference) from exc
        message = answer.message if isinstance(answer.message, dict) else {}
        result = message.get("disputeServiceResult")
        if not isinstance(result, dict) or "success" not in result:
            raise GatewayUnavailable(
                "The payment provider sent an unreadable answer.",
                detail=f"adyen {step} answer without disputeServiceResult: {message!r}",
                reference=reference,
            )
        if result["success"] is not True:
            raise InvalidGatewayRequest(
                "The payment provider refused the dispute defense.",
                detail=f"adyen {step}: {result.get('errorMessage') or 'no errorMessage'}",
                reference=reference,
            )
        return message

    async def _call(self, fn: Callable[[Any], AdyenResult], reference: str | None) -> AdyenResult:
        try:
            return await self._calls.call(fn)
        except GatewayError:
            raise
        except Exception as exc:  # the SDK and requests raise many types; all are translated
            raise translate(exc, reference=reference) from exc

    def _answered(
        self,
        answer: AdyenResult,
        *,
        amount: Money,
        manual: bool,
        payql_payment_id: str | None,
        declines_raise: bool = True,
    ) -> PaymentResult:
        """The payment an answer describes. A refusal raises `PaymentDeclined` for a charge; after the shopper's
        action (`declines_raise=False`) it is the payment's own outcome: FAILED with the decline."""
        message = answer.message or {}
        if not isinstance(message, dict) or "pspReference" not in message:
            raise GatewayUnavailable(
                "The payment provider sent an unreadable answer.",
                detail=f"adyen answer without pspReference: {message!r}",
            )
        result = payment_result(message, amount=amount, manual=manual, payql_payment_id=payql_payment_id)
        if result.status is PaymentStatus.FAILED:
            code = decline_code(message.get("refusalReasonCode"))
            if not declines_raise:
                return dataclasses.replace(
                    result, decline_code=code, decline_message=str(message.get("refusalReason") or "Refused")
                )
            raise PaymentDeclined(
                "The payment was declined.",
                decline_code=code,
                detail=f"adyen {message.get('resultCode')} {message.get('refusalReasonCode')}: "
                f"{message.get('refusalReason')}",
                reference=result.reference,
            )
        return result


def _defense_key(reference: str, evidence: DisputeEvidence, step: str) -> str:
    """One defense step's Idempotency-Key: the same dispute and evidence always give the same key (64 chars)."""
    digest = hashlib.sha256(json.dumps([reference, dataclasses.asdict(evidence)], sort_keys=True).encode())
    return f"payql-defense-{step}-{digest.hexdigest()}"[:64]


def _unchanged(reference: str, amount: Money, gateway_status: str) -> PaymentResult:
    """The payment as it stands while a modification is only `received`: AUTHORIZED, nothing captured yet. No
    amounts are claimed (the core's amounts only grow), so the answer moves nothing."""
    return PaymentResult(
        reference=reference, status=PaymentStatus.AUTHORIZED, amount=amount, gateway_status=gateway_status
    )
