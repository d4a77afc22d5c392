"""What the Adyen package must declare (tests/gateways/test_packages.py), and settings that build its adapter."""

from typing import Any

from gateways.package import Capabilities, ClientTokenization

EXPECTED = Capabilities(
    payments=True,
    manual_capture=True,
    refunds=True,
    billing=False,
    disputes=True,
    hosted_checkout=False,
    customer_directory=True,
    shopper_return=True,
    client_tokenization=ClientTokenization("adyen-web", ("clientKey", "environment"), r'(?s)\{.*"type"\s*:.*\}'),
)
CONFIGURED: dict[str, Any] = {
    "api_key": "AQE-packages",
    "merchant_account": "PackagesMerchant",
    "client_key": "test_PACKAGESCLIENTKEY",
    "hmac_keys": ["44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056"],
    "notification_username": "notifications",
    "notification_password": "secret-packages",
}
