"""What the Braintree package must declare (tests/gateways/test_packages.py), and settings that build its adapter."""

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
    client_tokenization=ClientTokenization("braintree-web", ("clientTokenUrl",)),
)
CONFIGURED: dict[str, Any] = {
    "merchant_id": "merchant-packages",
    "public_key": "public-packages",
    "private_key": "private-packages",
    "merchant_accounts": ["USD:packages_usd"],
}
