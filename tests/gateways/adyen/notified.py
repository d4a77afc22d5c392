"""`Notified`: the Adyen adapter with the emulator's notifications applied as they arrive, for the contract suite.

Adyen answers a capture, a cancellation or a refund with `received`, and tells the outcome in a signed
notification; it has no API to read a payment back (`AdyenGateway.retrieve` raises NotSupported). In PayQL the
core's ledger is where those notifications add up. Here, this wrapper plays that part for the shared scenarios:
after each call it takes the emulator's queued notifications, verifies them with the adapter's own
`verify_webhook` (Basic auth and HMAC), maps them with `interpret_event`, and folds the effects into the state
`retrieve` answers. A modification the notification refuses (success "false") raises `InvalidGatewayRequest`
naming the payment, which is how the scenarios expect a refusal. The SDK call itself is never replaced.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from db.transitions import can_move_payment
from domain.statuses import RefundStatus
from gateways.adyen import AdyenGateway
from gateways.errors import InvalidGatewayRequest
from gateways.types import (
    CaptureRequest,
    ChargeRequest,
    DisputeEvidence,
    DisputeResult,
    EventEffect,
    PaymentObserved,
    PaymentResult,
    RefundObserved,
    RefundRequest,
    RefundResult,
    VerifiedEvent,
    VoidRequest,
    WebhookDelivery,
)
from tests.adyen_emulator import AdyenEmulator

_MODIFICATIONS = ("CAPTURE", "CANCELLATION", "REFUND")


class Notified:
    name = "adyen"

    def __init__(self, gateway: AdyenGateway, emulator: AdyenEmulator) -> None:
        self.gateway = gateway
        self.emulator = emulator
        self.state: dict[str, PaymentResult] = {}

    async def charge(self, request: ChargeRequest) -> PaymentResult:
        result = await self.gateway.charge(request)
        self.state.setdefault(result.reference, result)
        await self.settle()
        return result

    async def capture(self, request: CaptureRequest) -> PaymentResult:
        await self.gateway.capture(request)
        await self.settle()
        return self.state[request.reference]

    async def void(self, request: VoidRequest) -> PaymentResult:
        await self.gateway.void(request)
        await self.settle()
        return self.state[request.reference]

    async def refund(self, request: RefundRequest) -> RefundResult:
        answered = await self.gateway.refund(request)
        await self.settle()
        return answered

    async def retrieve(self, reference: str) -> PaymentResult:
        return self.state[reference]

    async def settle(self) -> None:
        """Deliver the queued notifications to the adapter and fold their effects; raise on a refusal."""
        items = self.emulator.take()
        if not items:
            return
        delivery = WebhookDelivery(
            headers={"authorization": self.emulator.basic_auth()},
            body=self.emulator.body(items),
            received_at=int(time.time()),
        )
        event = await self.gateway.verify_webhook(delivery)
        for effect in self.gateway.interpret_event(event):
            self._fold(effect)
        for wrapper in items:
            item = wrapper["NotificationRequestItem"]
            if item["eventCode"] in _MODIFICATIONS and item["success"] == "false":
                raise InvalidGatewayRequest(
                    f"{item['eventCode']} refused", detail=item["reason"], reference=item["originalReference"]
                )

    def _fold(self, effect: EventEffect) -> None:
        if isinstance(effect, PaymentObserved):
            seen = effect.result
            known = self.state.get(seen.reference)
            if known is None:
                self.state[seen.reference] = seen
                return
            status = seen.status if can_move_payment(known.status, seen.status) else known.status
            self.state[seen.reference] = dataclasses.replace(
                known,
                status=status,
                amount_authorized=max(known.amount_authorized, seen.amount_authorized),
                amount_captured=max(known.amount_captured, seen.amount_captured),
            )
        elif isinstance(effect, RefundObserved) and effect.result.status is RefundStatus.SUCCEEDED:
            known = self.state[effect.result.payment_reference]
            refunded = known.amount_refunded + effect.result.amount.amount
            self.state[known.reference] = dataclasses.replace(known, amount_refunded=refunded)

    # The rest is the adapter's own.
    async def complete(self, reference: str, *, capture: bool, idempotency_key: str) -> PaymentResult:
        return await self.gateway.complete(reference, capture=capture, idempotency_key=idempotency_key)

    async def find_payment(self, payql_payment_id: str) -> PaymentResult | None:
        return await self.gateway.find_payment(payql_payment_id)

    async def list_payments(self, created_gte: int) -> list[PaymentResult]:
        return await self.gateway.list_payments(created_gte)

    async def retrieve_dispute(self, reference: str) -> DisputeResult:
        return await self.gateway.retrieve_dispute(reference)

    async def submit_dispute_evidence(self, reference: str, evidence: DisputeEvidence) -> DisputeResult:
        return await self.gateway.submit_dispute_evidence(reference, evidence)

    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        return await self.gateway.verify_webhook(delivery)

    def interpret_event(self, event: VerifiedEvent) -> list[EventEffect]:
        return self.gateway.interpret_event(event)

    async def aclose(self) -> None:
        await self.gateway.aclose()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.gateway, name)
