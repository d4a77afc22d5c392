"""Braintree's settings, `PAYQL_BRAINTREE_*`: the merchant id, the API key pair, one merchant account per
currency, the plan of each recurring price, earlier key pairs still verifying webhooks during a rotation, and
whether 3-D Secure is required."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, SecretStr
from pydantic_settings import NoDecode, SettingsConfigDict

from gateways.package import GatewaySettings


class BraintreeSettings(GatewaySettings):
    model_config = SettingsConfigDict(env_prefix="PAYQL_BRAINTREE_")

    merchant_id: str | None = None
    public_key: str | None = None
    private_key: SecretStr | None = None
    # "CURRENCY:merchant_account_id" entries: a Braintree merchant account settles in one currency, so a
    # payment goes to the account of its currency, and a currency without one is refused before any call.
    merchant_accounts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # "price_id:plan_id" entries: the Braintree plan (made in its Control Panel) each recurring price bills on;
    # a price without an entry bills on the plan whose id is the price id.
    plans: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # "public_key:private_key" pairs that still verify webhooks while keys rotate (the current pair always does).
    previous_webhook_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    # Ask Braintree to refuse a card payment whose 3-D Secure result did not shift liability to the issuer.
    three_d_secure_required: bool = False
    # Braintree's production instead of its sandbox; `api_base` ("http://host:port") points elsewhere (tests).
    live: bool = False
    api_base: str | None = None
    # Optional: a tokenization key lets Drop-in start without fetching a client token (no 3-D Secure then).
    tokenization_key: str | None = None

    def problems_when_enabled(self) -> list[str]:
        problems = []
        if not self.merchant_id or not self.public_key or self.private_key is None:
            problems.append(
                "PAYQL_BRAINTREE_MERCHANT_ID/PAYQL_BRAINTREE_PUBLIC_KEY/PAYQL_BRAINTREE_PRIVATE_KEY: required when "
                "braintree is enabled"
            )
        if not self.merchant_accounts:
            problems.append("PAYQL_BRAINTREE_MERCHANT_ACCOUNTS: name one CURRENCY:merchant_account_id at least")
        if any(entry.count(":") != 1 for entry in self.merchant_accounts):
            problems.append("PAYQL_BRAINTREE_MERCHANT_ACCOUNTS: each entry is CURRENCY:merchant_account_id")
        if any(entry.count(":") != 1 for entry in self.plans):
            problems.append("PAYQL_BRAINTREE_PLANS: each entry is price_id:plan_id")
        if any(key.get_secret_value().count(":") != 1 for key in self.previous_webhook_keys):
            problems.append("PAYQL_BRAINTREE_PREVIOUS_WEBHOOK_KEYS: each entry is public_key:private_key")
        return problems

    def account_by_currency(self) -> dict[str, str]:
        pairs = (entry.split(":", 1) for entry in self.merchant_accounts if entry.count(":") == 1)
        return {currency.strip().upper(): account.strip() for currency, account in pairs}

    def plan_by_price(self) -> dict[str, str]:
        pairs = (entry.split(":", 1) for entry in self.plans if entry.count(":") == 1)
        return {price.strip(): plan.strip() for price, plan in pairs}

    def webhook_key_pairs(self) -> list[tuple[str, str]]:
        """Every key pair a delivery may be signed with, the current one first."""
        pairs = []
        if self.public_key and self.private_key is not None:
            pairs.append((self.public_key, self.private_key.get_secret_value()))
        for key in self.previous_webhook_keys:
            public, _, private = key.get_secret_value().partition(":")
            if public and private:
                pairs.append((public, private))
        return pairs
