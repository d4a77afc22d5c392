"""PayPal's settings, `PAYQL_PAYPAL_*`; the credentials also answer to PayPal's usual names (`PAYPAL_CLIENT_ID`,
...), the PayQL name winning when both are set."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import NoDecode, SettingsConfigDict

from gateways.package import GatewaySettings


class PayPalSettings(GatewaySettings):
    model_config = SettingsConfigDict(env_prefix="PAYQL_PAYPAL_")

    # Public: PayPal's JS SDK in the shopper's browser is loaded with it.
    client_id: str | None = Field(
        default=None, validation_alias=AliasChoices("PAYQL_PAYPAL_CLIENT_ID", "PAYPAL_CLIENT_ID", "client_id")
    )
    client_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("PAYQL_PAYPAL_CLIENT_SECRET", "PAYPAL_CLIENT_SECRET", "client_secret"),
    )
    # The webhook ids deliveries are signed for; list several while rotating.
    webhook_ids: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        validation_alias=AliasChoices("PAYQL_PAYPAL_WEBHOOK_IDS", "PAYPAL_WEBHOOK_ID", "webhook_ids"),
    )
    # PayPal's live API instead of its sandbox; `api_base` points elsewhere (tests use an emulator).
    live: bool = False
    api_base: str | None = None

    def problems_when_enabled(self) -> list[str]:
        problems = []
        if not self.client_id or self.client_secret is None:
            problems.append("PAYQL_PAYPAL_CLIENT_ID/PAYQL_PAYPAL_CLIENT_SECRET: required when paypal is enabled")
        if not self.webhook_ids:
            problems.append("PAYQL_PAYPAL_WEBHOOK_IDS: required when paypal is in PAYQL_GATEWAYS")
        return problems
