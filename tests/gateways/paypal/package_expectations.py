"""What the PayPal package must declare (tests/gateways/test_packages.py), and settings that build its adapter."""

from typing import Any

from gateways.package import Capabilities, ClientTokenization

EXPECTED = Capabilities(
    payments=True,
    manual_capture=True,
    refunds=True,
    billing=True,
    disputes=True,
    hosted_checkout=False,
    customer_directory=False,
    collects_payment_method=True,
    client_tokenization=ClientTokenization("paypal-js", ("clientId",), r"paypal_order:[A-Za-z0-9-]+"),
)
CONFIGURED: dict[str, Any] = {
    "client_id": "client-packages",
    "client_secret": "secret-packages",
    "webhook_ids": ["WH-1"],
}
