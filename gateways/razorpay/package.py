"""Razorpay as a gateway package: `PAYQL_RAZORPAY_*` settings, the factory, the webhook verifier, what it can do
and the key id Razorpay Checkout is opened with. The adapter (and the SDK) is imported only when built."""

from __future__ import annotations

from typing import ClassVar

from gateways.package import (
    Capabilities,
    ClientTokenization,
    DeliveryVerifier,
    FactoryPrepared,
    GatewayConfigurationError,
    GatewayPackage,
    GatewaySettings,
    PreparedGateway,
)
from gateways.razorpay.settings import RazorpaySettings
from gateways.razorpay.webhooks import RazorpayDeliveryVerifier


class RazorpayPackage(GatewayPackage[RazorpaySettings]):
    name: ClassVar[str] = "razorpay"
    settings_type: ClassVar[type[GatewaySettings]] = RazorpaySettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        payments=True,
        manual_capture=True,
        refunds=True,
        # Razorpay plans and subscriptions (the shopper authenticates each in Checkout).
        billing=True,
        disputes=True,
        hosted_checkout=False,
        customer_directory=False,
        # Checkout hands the SPA a signed payment confirmation, sent back with completePayment.
        shopper_return=True,
        # A charge creates a Razorpay Order; the shopper picks and authorizes a method in Checkout afterwards.
        collects_payment_method=True,
        # The SPA opens Razorpay Checkout (checkout.js) with the key id and the order id of the next action.
        client_tokenization=ClientTokenization(sdk="razorpay-checkout", config_keys=("keyId",)),
    )

    def prepare(self, settings: RazorpaySettings, *, public_base_url: str, background: bool) -> PreparedGateway:
        from gateways.razorpay.adapter import RazorpayGateway
        from gateways.razorpay.client import BASE_URL

        key_id, key_secret = settings.key_id, settings.key_secret
        if not key_id or key_secret is None:
            variables = f"{settings.variable('key_id')}/{settings.variable('key_secret')}"
            raise GatewayConfigurationError(f"{variables}: required when razorpay is enabled")
        return FactoryPrepared(
            lambda: RazorpayGateway(
                key_id,
                key_secret.get_secret_value(),
                webhook_secrets=settings.webhook_secrets,
                base_url=settings.api_base or BASE_URL,
            )
        )

    def webhook_verifier(self, settings: RazorpaySettings) -> DeliveryVerifier:
        return RazorpayDeliveryVerifier(settings.webhook_secrets)

    def public_config(self, settings: RazorpaySettings, *, public_base_url: str) -> dict[str, str]:
        return {"keyId": settings.key_id} if settings.key_id else {}


PACKAGE = RazorpayPackage()
