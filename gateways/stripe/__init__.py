"""The Stripe gateway: PaymentIntents, hosted Checkout, Billing and disputes through the official `stripe` SDK
(async calls only).

`client.py` is the plumbing (one `StripeClient`, pinned API version, timeouts, no SDK retries),
`transformers.py` maps PaymentIntents, Charges and Refunds, `billing_transformers.py` maps subscriptions,
invoices, Checkout Sessions and disputes, `events.py` is the webhook table, `errors.py` maps the SDK's errors
onto `gateways.errors`, `billing.py` implements `BillingGateway` and `adapter.py` the `PaymentGateway` and
`HostedCheckoutGateway` protocols. Webhooks use Stripe's signature scheme, verified against every configured
secret (`gateways.stripe_signature`).
"""

from gateways.stripe.adapter import StripeGateway
from gateways.stripe.client import API_VERSION

__all__ = ["API_VERSION", "StripeGateway"]
