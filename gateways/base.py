"""The gateway protocol: the verbs every provider implements, with normalized inputs and outputs.

Adapters raise only `gateways.errors` exceptions, never vendor ones, and never touch our database.
An unsupported verb raises `NotSupported`; it is never silently skipped.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from gateways.types import (
    CaptureRequest,
    ChargeRequest,
    PaymentResult,
    RefundRequest,
    RefundResult,
    VoidRequest,
)


@runtime_checkable
class PaymentGateway(Protocol):
    name: str

    async def charge(self, request: ChargeRequest) -> PaymentResult:
        """Create and confirm a payment. Declines raise `PaymentDeclined`."""
        ...

    async def retrieve(self, reference: str) -> PaymentResult:
        """Read the payment's current state from the gateway (the reconciliation read)."""
        ...

    async def capture(self, request: CaptureRequest) -> PaymentResult: ...

    async def void(self, request: VoidRequest) -> PaymentResult: ...

    async def refund(self, request: RefundRequest) -> RefundResult: ...

    async def aclose(self) -> None:
        """Release network clients and worker threads."""
        ...
