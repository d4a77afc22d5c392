"""PayPal as a gateway package: `PAYQL_PAYPAL_*` settings, the factory, the offline webhook verifier, what it can
do and the client id PayPal's JS SDK is loaded with. The adapter (and the SDK) is imported only when built."""

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
from gateways.paypal.settings import PayPalSettings
from gateways.paypal.webhooks import PayPalDeliveryVerifier, WebhookVerifier


class PayPalPackage(GatewayPackage[PayPalSettings]):
    name: ClassVar[str] = "paypal"
    settings_type: ClassVar[type[GatewaySettings]] = PayPalSettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        payments=True,
        manual_capture=True,
        refunds=True,
        billing=True,
        disputes=True,
        hosted_checkout=False,
        customer_directory=False,
        # Without an approved order, a charge creates one and answers the buyer's approval redirect.
        collects_payment_method=True,
        # PayPal's JS SDK (buttons) approves an order in the browser; "paypal_order:<id>" is the `paymentMethod`.
        client_tokenization=ClientTokenization(
            sdk="paypal-js", config_keys=("clientId",), token_format=r"paypal_order:[A-Za-z0-9-]+"
        ),
    )

    def prepare(self, settings: PayPalSettings, *, public_base_url: str, background: bool) -> PreparedGateway:
        from gateways.paypal.adapter import PayPalGateway
        from gateways.paypal.client import PRODUCTION_BASE_URL

        client_id, client_secret = settings.client_id, settings.client_secret
        if not client_id or client_secret is None:
            variables = f"{settings.variable('client_id')}/{settings.variable('client_secret')}"
            raise GatewayConfigurationError(f"{variables}: required when paypal is enabled")
        return FactoryPrepared(
            lambda: PayPalGateway(
                client_id,
                client_secret.get_secret_value(),
                webhook_id=settings.webhook_ids,
                base_url=settings.api_base or (PRODUCTION_BASE_URL if settings.live else None),
            )
        )

    def webhook_verifier(self, settings: PayPalSettings) -> DeliveryVerifier:
        return PayPalDeliveryVerifier(WebhookVerifier([wid for wid in settings.webhook_ids if wid]))

    def public_config(self, settings: PayPalSettings, *, public_base_url: str) -> dict[str, str]:
        return {"clientId": settings.client_id} if settings.client_id else {}


PACKAGE = PayPalPackage()
