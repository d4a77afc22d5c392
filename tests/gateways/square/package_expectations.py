"""What the Square package must declare (tests/gateways/test_packages.py), and settings that build its adapter."""

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
    client_tokenization=ClientTokenization(
        "square-web-payments-sdk", ("applicationId", "locationId"), r'(cnon|ccof):[\w-]+|\{[\s\S]*"sourceId"[\s\S]*\}'
    ),
)
CONFIGURED: dict[str, Any] = {
    "access_token": "EAAA-packages",
    "location_id": "L-packages",
    "application_id": "sandbox-sq0idb-packages",
    "webhook_signature_keys": ["square-key-packages"],
}
