"""Stripe as a gateway package: `PAYQL_STRIPE_*` settings, the factory, the Stripe-scheme verifier, what it can
do and the publishable key Stripe.js needs. The adapter (and the SDK) is imported only when it is built."""

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
from gateways.stripe.settings import StripeSettings
from gateways.stripe_signature import StripeSchemeVerifier


class StripePackage(GatewayPackage[StripeSettings]):
    name: ClassVar[str] = "stripe"
    settings_type: ClassVar[type[GatewaySettings]] = StripeSettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        payments=True,
        manual_capture=True,
        refunds=True,
        billing=True,
        disputes=True,
        hosted_checkout=True,
        customer_directory=True,
        # Stripe.js (Elements) turns the card into a PaymentMethod id, sent as `paymentMethod`.
        # Stripe's object ids: a PaymentMethod (pm_), or a Card or Source attached to a customer (card_, src_), all
        # alphanumeric after the prefix; and its named test methods (pm_card_visa, …).
        client_tokenization=ClientTokenization(
            sdk="stripe.js",
            config_keys=("publishableKey",),
            token_format=r"(pm|card|src)_[A-Za-z0-9]+|pm_card_[A-Za-z]+",
        ),
    )

    def prepare(self, settings: StripeSettings, *, public_base_url: str, background: bool) -> PreparedGateway:
        from gateways.stripe.adapter import StripeGateway

        secret_key = settings.secret_key
        if secret_key is None:
            raise GatewayConfigurationError(f"{settings.variable('secret_key')}: required when stripe is enabled")
        return FactoryPrepared(
            lambda: StripeGateway(
                secret_key.get_secret_value(),
                webhook_secrets=settings.webhook_secrets,
                base_url=settings.api_base,
                checkout_expiry_seconds=settings.checkout_expiry_seconds,
            )
        )

    def webhook_verifier(self, settings: StripeSettings) -> DeliveryVerifier:
        return StripeSchemeVerifier(settings.webhook_secrets)

    def public_config(self, settings: StripeSettings, *, public_base_url: str) -> dict[str, str]:
        return {"publishableKey": settings.publishable_key} if settings.publishable_key else {}


PACKAGE = StripePackage()
