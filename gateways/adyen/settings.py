"""Adyen's settings, `PAYQL_ADYEN_*`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import NoDecode, SettingsConfigDict

from gateways.package import GatewaySettings


class AdyenSettings(GatewaySettings):
    model_config = SettingsConfigDict(env_prefix="PAYQL_ADYEN_")

    api_key: SecretStr | None = None
    merchant_account: str | None = None
    # Public: Drop-in / Components in the shopper's browser encrypt the card with it.
    client_key: str | None = None
    # The notification HMAC keys (hex, as the Customer Area shows them); list two while rotating.
    hmac_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # HTTP Basic credentials Adyen sends with every notification (set on the webhook in the Customer Area).
    notification_username: str | None = None
    notification_password: SecretStr | None = None
    # Adyen's live platform (needs the account's live URL prefix) instead of its test platform; `api_base`
    # points the Checkout and Disputes APIs elsewhere (tests use an emulator).
    live: bool = False
    live_endpoint_prefix: str | None = None
    api_base: str | None = None

    def problems_when_enabled(self) -> list[str]:
        problems = []
        if self.api_key is None or not self.merchant_account:
            problems.append("PAYQL_ADYEN_API_KEY/PAYQL_ADYEN_MERCHANT_ACCOUNT: required when adyen is enabled")
        if not self.hmac_keys:
            problems.append("PAYQL_ADYEN_HMAC_KEYS: required when adyen is in PAYQL_GATEWAYS")
        if not self.notification_username or self.notification_password is None:
            problems.append(
                "PAYQL_ADYEN_NOTIFICATION_USERNAME/PAYQL_ADYEN_NOTIFICATION_PASSWORD: required when adyen is enabled "
                "(set the same Basic auth on the webhook in Adyen's Customer Area)"
            )
        if self.live and not self.live_endpoint_prefix:
            problems.append("PAYQL_ADYEN_LIVE_ENDPOINT_PREFIX: required with PAYQL_ADYEN_LIVE")
        return problems
