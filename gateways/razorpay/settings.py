"""Razorpay's settings, `PAYQL_RAZORPAY_*`; the API keys also answer to Razorpay's usual names (`RAZORPAY_KEY_ID`,
`RAZORPAY_KEY_SECRET`), the PayQL name winning when both are set."""

from __future__ import annotations

from typing import Annotated

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import NoDecode, SettingsConfigDict

from gateways.package import GatewaySettings


class RazorpaySettings(GatewaySettings):
    model_config = SettingsConfigDict(env_prefix="PAYQL_RAZORPAY_")

    # Public: Razorpay Checkout in the shopper's browser is opened with it.
    key_id: str | None = Field(
        default=None, validation_alias=AliasChoices("PAYQL_RAZORPAY_KEY_ID", "RAZORPAY_KEY_ID", "key_id")
    )
    # Signs what Checkout hands the SPA (`razorpay_signature`) as well as authenticating API calls.
    key_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("PAYQL_RAZORPAY_KEY_SECRET", "RAZORPAY_KEY_SECRET", "key_secret"),
    )
    # The webhook secrets deliveries are signed with; list several while rotating.
    webhook_secrets: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Razorpay's API is one host for test and live keys (the key decides); `api_base` points elsewhere (tests).
    api_base: str | None = None

    def problems_when_enabled(self) -> list[str]:
        problems = []
        if not self.key_id or self.key_secret is None:
            problems.append("PAYQL_RAZORPAY_KEY_ID/PAYQL_RAZORPAY_KEY_SECRET: required when razorpay is enabled")
        if not self.webhook_secrets:
            problems.append("PAYQL_RAZORPAY_WEBHOOK_SECRETS: required when razorpay is in PAYQL_GATEWAYS")
        return problems
