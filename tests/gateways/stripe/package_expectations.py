"""What the Stripe package must declare (tests/gateways/test_packages.py), and settings that build its adapter."""

from typing import Any

from gateways.package import Capabilities, ClientTokenization

EXPECTED = Capabilities(
    payments=True,
    manual_capture=True,
    refunds=True,
    billing=True,
    disputes=True,
    hosted_checkout=True,
    customer_directory=True,
    client_tokenization=ClientTokenization(
        "stripe.js", ("publishableKey",), r"(pm|card|src)_[A-Za-z0-9]+|pm_card_[A-Za-z]+"
    ),
)
CONFIGURED: dict[str, Any] = {
    "secret_key": "sk_test_packages",
    "webhook_secrets": ["whsec_packages_test"],
    "publishable_key": "pk_x",
}
