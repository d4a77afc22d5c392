"""Square's settings, `PAYQL_SQUARE_*`; the access token also answers to Square's usual `SQUARE_ACCESS_TOKEN`, the
PayQL name winning when both are set."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import NoDecode, SettingsConfigDict

from gateways.package import GatewaySettings


class SquareSettings(GatewaySettings):
    model_config = SettingsConfigDict(env_prefix="PAYQL_SQUARE_")

    access_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("PAYQL_SQUARE_ACCESS_TOKEN", "SQUARE_ACCESS_TOKEN", "access_token"),
    )
    # Public by design: the Web Payments SDK in the shopper's browser is loaded with both.
    application_id: str | None = None
    location_id: str | None = None
    # The signature keys of the webhook subscription; list two while rotating (Square shows one at a time).
    webhook_signature_keys: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The URL the webhook subscription was registered with, exactly (Square signs it with the body). Unset: PayQL's
    # public base URL + /webhooks/square.
    notification_url: str | None = None
    # Square's production API instead of its sandbox; `api_base` points elsewhere (tests use an emulator).
    live: bool = False
    api_base: str | None = None

    def problems_when_enabled(self) -> list[str]:
        problems = []
        if self.access_token is None:
            problems.append("PAYQL_SQUARE_ACCESS_TOKEN: required when square is in PAYQL_GATEWAYS")
        if not self.location_id:
            problems.append("PAYQL_SQUARE_LOCATION_ID: required when square is in PAYQL_GATEWAYS")
        if not self.webhook_signature_keys:
            problems.append("PAYQL_SQUARE_WEBHOOK_SIGNATURE_KEYS: required when square is in PAYQL_GATEWAYS")
        return problems
