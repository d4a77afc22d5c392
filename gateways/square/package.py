"""Square as a gateway package: `PAYQL_SQUARE_*` settings, the factory, the signature verifier, what it can do and
the application and location ids Square's Web Payments SDK is loaded with. The adapter (and the SDK) is imported
only when built.

Billing is Square's Subscriptions API (see `billing.py`): plans and variations in the Catalog, a card on file,
renewals as invoices. No customer directory is declared: checkout payments name no Square customer; only a
subscription makes one (privately, in `billing.py`).
"""

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
from gateways.square.settings import SquareSettings
from gateways.square.webhooks import WEBHOOK_PATH, SquareDeliveryVerifier


class SquarePackage(GatewayPackage[SquareSettings]):
    name: ClassVar[str] = "square"
    settings_type: ClassVar[type[GatewaySettings]] = SquareSettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        payments=True,
        manual_capture=True,
        refunds=True,
        billing=True,
        disputes=True,
        hosted_checkout=False,
        customer_directory=False,
        # The Web Payments SDK tokenizes the card in the browser; its token ("cnon:...", or a card on file's
        # "ccof:..."), alone or with verifyBuyer's token as {"sourceId", "verificationToken"}, is the `paymentMethod`.
        client_tokenization=ClientTokenization(
            sdk="square-web-payments-sdk",
            config_keys=("applicationId", "locationId"),
            token_format=r'(cnon|ccof):[\w-]+|\{[\s\S]*"sourceId"[\s\S]*\}',
        ),
    )

    def prepare(self, settings: SquareSettings, *, public_base_url: str, background: bool) -> PreparedGateway:
        from gateways.square.adapter import SquareGateway
        from gateways.square.client import PRODUCTION_BASE_URL, SANDBOX_BASE_URL

        access_token, location_id = settings.access_token, settings.location_id
        if access_token is None or not location_id:
            variables = f"{settings.variable('access_token')}/{settings.variable('location_id')}"
            raise GatewayConfigurationError(f"{variables}: required when square is enabled")
        base_url = settings.api_base or (PRODUCTION_BASE_URL if settings.live else SANDBOX_BASE_URL)
        notification_url = notification_url_of(settings, public_base_url)
        return FactoryPrepared(
            lambda: SquareGateway(
                access_token.get_secret_value(),
                location_id=location_id,
                webhook_signature_keys=settings.webhook_signature_keys,
                notification_url=notification_url,
                base_url=base_url,
            )
        )

    def webhook_verifier(self, settings: SquareSettings) -> DeliveryVerifier:
        # Built from the settings alone: without PAYQL_SQUARE_NOTIFICATION_URL it refuses every delivery (the
        # adapter, which knows PayQL's public URL, verifies them in the server).
        return SquareDeliveryVerifier(settings.webhook_signature_keys, settings.notification_url)

    def public_config(self, settings: SquareSettings, *, public_base_url: str) -> dict[str, str]:
        public = {"applicationId": settings.application_id, "locationId": settings.location_id}
        return {key: value for key, value in public.items() if value}


def notification_url_of(settings: SquareSettings, public_base_url: str) -> str:
    return settings.notification_url or f"{public_base_url.rstrip('/')}{WEBHOOK_PATH}"


PACKAGE = SquarePackage()
