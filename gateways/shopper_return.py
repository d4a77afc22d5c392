"""Shopper returns: what a provider's checkout hands the SPA after the shopper acts on the provider's side
(a signed payment confirmation, a redirect or 3-D Secure result), sent back to us with `completePayment`.

A gateway whose flow needs such values implements `ShopperReturnGateway` beside `PaymentGateway`; for any
other gateway the use case refuses returned values as invalid input. What the SPA sends is never the truth
on its own: the adapter verifies it (a signature in constant time) and answers the payment as its gateway
reads it server-side. Values that fail verification raise `ShopperReturnRejected`, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol, runtime_checkable

from gateways.types import PaymentResult


@runtime_checkable
class ShopperReturnGateway(Protocol):
    async def accept_shopper_return(
        self, reference: str, returned: Mapping[str, str], *, capture: bool, idempotency_key: str
    ) -> PaymentResult:
        """Verify `returned` for the payment `reference` (ours at this gateway), finish what the provider needs
        finished (for example submit a 3-D Secure result, capturing when `capture`; retries send
        `idempotency_key`), and answer the payment as read from the gateway.

        Raises `ShopperReturnRejected` when the values do not verify or name another payment."""
        ...
