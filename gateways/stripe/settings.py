"""Stripe's settings, `PAYQL_STRIPE_*`; the keys also answer to Stripe's usual names (`STRIPE_SECRET_KEY`, ...),
the PayQL name winning when both are set."""

from __future__ import annotations

from typing import Annotated, Final

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import NoDecode, SettingsConfigDict

from gateways.package import GatewaySettings

# Stripe's limits on a Checkout Session's `expires_at`, counted from its creation.
CHECKOUT_MIN_EXPIRY_SECONDS: Final = 30 * 60
CHECKOUT_MAX_EXPIRY_SECONDS: Final = 24 * 3600


class StripeSettings(GatewaySettings):
    model_config = SettingsConfigDict(env_prefix="PAYQL_STRIPE_")

    secret_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("PAYQL_STRIPE_SECRET_KEY", "STRIPE_SECRET_KEY", "secret_key")
    )
    # Public by design: Stripe.js in the shopper's browser needs it (never the secret key).
    publishable_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("PAYQL_STRIPE_PUBLISHABLE_KEY", "STRIPE_PUBLISHABLE_KEY", "publishable_key"),
    )
    # Stripe signs each endpoint's webhooks with its own secret; list several while rotating.
    webhook_secrets: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("PAYQL_STRIPE_WEBHOOK_SECRETS", "STRIPE_WEBHOOK_SECRETS", "webhook_secrets"),
    )
    # Only to point the SDK elsewhere (tests use localstripe); unset means api.stripe.com.
    api_base: str | None = None
    # How long a hosted Checkout page stays payable; Stripe accepts 30 minutes to 24 hours.
    checkout_expiry_seconds: int = Field(
        default=CHECKOUT_MIN_EXPIRY_SECONDS, ge=CHECKOUT_MIN_EXPIRY_SECONDS, le=CHECKOUT_MAX_EXPIRY_SECONDS
    )

    def problems_when_enabled(self) -> list[str]:
        problems = []
        if self.secret_key is None:
            problems.append("PAYQL_STRIPE_SECRET_KEY: required when stripe is in PAYQL_GATEWAYS")
        if not self.webhook_secrets:
            problems.append("PAYQL_STRIPE_WEBHOOK_SECRETS: required when stripe is in PAYQL_GATEWAYS")
        return problems
