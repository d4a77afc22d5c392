"""The Stripe gateway: PaymentIntents through the official `stripe` SDK (async calls only).

`client.py` is the plumbing (one `StripeClient`, pinned API version, timeouts, no SDK retries),
`transformers.py` maps Stripe's objects and statuses onto `gateways.types`, `errors.py` maps the SDK's
errors onto `gateways.errors`, `adapter.py` implements the `PaymentGateway` protocol. Webhooks use
Stripe's signature scheme, verified against every configured secret (`gateways.sandbox.signing`).
"""

from gateways.stripe.adapter import StripeGateway
from gateways.stripe.client import API_VERSION

__all__ = ["API_VERSION", "StripeGateway"]
