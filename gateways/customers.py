"""Gateway customers: the gateway's own record of one of our customers, created on first use.

A gateway that keeps customers (Stripe) implements `CustomerDirectory` beside `PaymentGateway`; PayQL
remembers the reference it answers (`Customer.gateway_references`) and sends it with every later
payment, so the gateway sees one customer across orders. A gateway without customers (PayPal orders,
the sandbox) simply does not implement it. The call carries an idempotency key derived from our
customer, so concurrent first purchases make one gateway customer.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable


@runtime_checkable
class CustomerDirectory(Protocol):
    name: str

    async def ensure_customer(self, customer_id: str, email: str | None) -> str:
        """Create the gateway's customer for our `customer_id` (idempotently) and return its reference."""
        ...
