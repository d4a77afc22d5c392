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
    client_tokenization=ClientTokenization("paypal-js", ("clientId",)),
)
CONFIGURED: dict[str, Any] = {
    "client_id": "client-packages",
    "client_secret": "secret-packages",
    "webhook_ids": ["WH-1"],
}
