"""Tests of the Braintree package. The SDK is imported through `gateways.braintree.sdk` first: it warns on import."""

from gateways.braintree.sdk import braintree  # noqa: F401
