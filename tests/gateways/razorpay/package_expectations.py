"""What the Razorpay package must declare (tests/gateways/test_packages.py), and settings that build its adapter."""

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
    shopper_return=True,
    collects_payment_method=True,
    client_tokenization=ClientTokenization("razorpay-checkout", ("keyId",)),
)
CONFIGURED: dict[str, Any] = {
    "key_id": "rzp_test_packages",
    "key_secret": "secret-packages",
    "webhook_secrets": ["whsec-packages"],
}
