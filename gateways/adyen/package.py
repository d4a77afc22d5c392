"""Adyen as a gateway package: `PAYQL_ADYEN_*` settings, the factory, the notification verifier, what it can do
and the client key Drop-in / Components encrypt cards with. The adapter (and the SDK) is imported only when built.

Capabilities: payments with manual capture and refunds; disputes from chargeback notifications, defended through
the Disputes API with documents written from PayQL's evidence (`defense.py`; the API credential needs Adyen's
"API dispute management" role); the SPA sends back Drop-in's `redirectResult` / `threeDSResult`
(`shopper_return`); our customer is the `shopperReference` stored cards belong to (`customer_directory`). No
billing: Adyen has no billing engine, so `createSubscription` answers NOT_SUPPORTED for it.
"""

from __future__ import annotations

from typing import ClassVar

from gateways.adyen.notifications import NotificationVerifier
from gateways.adyen.settings import AdyenSettings
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


class AdyenPackage(GatewayPackage[AdyenSettings]):
    name: ClassVar[str] = "adyen"
    settings_type: ClassVar[type[GatewaySettings]] = AdyenSettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        payments=True,
        manual_capture=True,
        refunds=True,
        billing=False,
        disputes=True,
        hosted_checkout=False,
        customer_directory=True,
        shopper_return=True,
        # Drop-in / Components encrypt the card in the browser; `state.data.paymentMethod` (JSON) is the
        # `paymentMethod`: an object with its `type`, alone or under "paymentMethod".
        client_tokenization=ClientTokenization(
            sdk="adyen-web", config_keys=("clientKey", "environment"), token_format=r'(?s)\{.*"type"\s*:.*\}'
        ),
    )

    def prepare(self, settings: AdyenSettings, *, public_base_url: str, background: bool) -> PreparedGateway:
        from gateways.adyen.adapter import AdyenGateway

        api_key, merchant_account = settings.api_key, settings.merchant_account
        if api_key is None or not merchant_account:
            variables = f"{settings.variable('api_key')}/{settings.variable('merchant_account')}"
            raise GatewayConfigurationError(f"{variables}: required when adyen is enabled")
        username, password = _notification_credentials(settings)
        return FactoryPrepared(
            lambda: AdyenGateway(
                api_key.get_secret_value(),
                merchant_account,
                hmac_keys=settings.hmac_keys,
                notification_username=username,
                notification_password=password,
                api_base=settings.api_base,
                live=settings.live,
                live_endpoint_prefix=settings.live_endpoint_prefix,
            )
        )

    def webhook_verifier(self, settings: AdyenSettings) -> DeliveryVerifier:
        username, password = _notification_credentials(settings)
        return NotificationVerifier(settings.hmac_keys, username, password)

    def public_config(self, settings: AdyenSettings, *, public_base_url: str) -> dict[str, str]:
        if not settings.client_key:
            return {}
        return {"clientKey": settings.client_key, "environment": "live" if settings.live else "test"}


def _notification_credentials(settings: AdyenSettings) -> tuple[str, str]:
    """The Basic auth pair; unset, it is refused by `problems_when_enabled` and matches no delivery here."""
    password = settings.notification_password.get_secret_value() if settings.notification_password else ""
    return settings.notification_username or "", password


PACKAGE = AdyenPackage()
