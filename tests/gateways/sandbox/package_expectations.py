"""What the sandbox package must declare (tests/gateways/test_packages.py), and settings that build its adapter."""

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
    test_clock=True,
    client_tokenization=ClientTokenization("payql-sandbox", ("tokensUrl",), r"pm_(sbx_[0-9a-f]{24}|card_[A-Za-z]+)"),
)
CONFIGURED: dict[str, Any] = {"webhook_secrets": ["whsec_packages_test"], "state_path": None}
