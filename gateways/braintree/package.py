"""Braintree as a gateway package: `PAYQL_BRAINTREE_*` settings, the factory, the webhook verifier, what it can
do, and where the SPA gets the client token Drop-in / Hosted Fields need.

The client token is served by a route (`POST /braintree/client-token`, rate-limited per client) rather than put
in the public configuration: Braintree mints it by an API call and it expires (24 hours), while `publicConfig`
is static. It is not per shopper (no Braintree customer is named: PayQL vaults nothing there), so any visitor may
fetch one; it authorizes tokenizing a card and running 3-D Secure, never a charge. `publicConfig` gives its URL
(`clientTokenUrl`) and, when set, a tokenization key (enough for Drop-in without 3-D Secure). The adapter (and
the SDK) is imported only when built.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from gateways.base import PaymentGateway
from gateways.braintree.settings import BraintreeSettings
from gateways.errors import GatewayError
from gateways.package import (
    Capabilities,
    ClientTokenization,
    DeliveryVerifier,
    GatewayConfigurationError,
    GatewayPackage,
    GatewaySettings,
    PreparedGateway,
    RouteHost,
)

CLIENT_TOKEN_PATH = "/client-token"
# Client tokens per client address and minute: a checkout needs one or two.
CLIENT_TOKEN_LIMIT = "30/minute"


class PreparedBraintree(PreparedGateway):
    def __init__(self, settings: BraintreeSettings) -> None:
        from gateways.braintree.client import BraintreeClient

        private_key = settings.private_key
        if not settings.merchant_id or not settings.public_key or private_key is None:
            raise GatewayConfigurationError(
                f"{settings.variable('merchant_id')}/{settings.variable('public_key')}/"
                f"{settings.variable('private_key')}: required when braintree is enabled"
            )
        self._settings = settings
        self._client = BraintreeClient(
            settings.merchant_id,
            settings.public_key,
            private_key.get_secret_value(),
            live=settings.live,
            api_base=settings.api_base,
        )

    async def open(self) -> PaymentGateway:
        from gateways.braintree.adapter import BraintreeGateway

        return BraintreeGateway(
            self._client,
            merchant_accounts=self._settings.account_by_currency(),
            webhook_keys=self._settings.webhook_key_pairs(),
            three_d_secure_required=self._settings.three_d_secure_required,
            plans=self._settings.plan_by_price(),
        )

    def routes(self, host: RouteHost) -> Sequence[BaseRoute]:
        admit = host.rate_limiter(CLIENT_TOKEN_LIMIT, "braintree-client-token")

        async def client_token(request: Request) -> JSONResponse:
            wait = await admit(request.client.host if request.client else "unknown")
            if wait is not None:
                return JSONResponse({"error": "rate limited"}, status_code=429, headers={"Retry-After": str(wait)})
            try:
                token = await self._client.call(lambda sdk: sdk.client_token.generate())
            except GatewayError as error:
                return JSONResponse({"error": error.message}, status_code=503)
            return JSONResponse({"clientToken": token}, headers={"Cache-Control": "no-store"})

        return [Route(CLIENT_TOKEN_PATH, client_token, methods=["POST"])]


class BraintreePackage(GatewayPackage[BraintreeSettings]):
    name: ClassVar[str] = "braintree"
    settings_type: ClassVar[type[GatewaySettings]] = BraintreeSettings
    capabilities: ClassVar[Capabilities] = Capabilities(
        payments=True,
        manual_capture=True,
        refunds=True,
        billing=True,
        disputes=True,
        hosted_checkout=False,
        customer_directory=False,
        # Drop-in / Hosted Fields (braintree-web) tokenize the card; the nonce is the `paymentMethod`.
        # `tokenizationKey` is also given when set (optional: Drop-in without 3-D Secure).
        client_tokenization=ClientTokenization(sdk="braintree-web", config_keys=("clientTokenUrl",)),
    )

    def prepare(self, settings: BraintreeSettings, *, public_base_url: str, background: bool) -> PreparedGateway:
        return PreparedBraintree(settings)

    def webhook_verifier(self, settings: BraintreeSettings) -> DeliveryVerifier:
        from gateways.braintree.webhooks import BraintreeDeliveryVerifier

        return BraintreeDeliveryVerifier(settings.webhook_key_pairs())

    def public_config(self, settings: BraintreeSettings, *, public_base_url: str) -> dict[str, str]:
        config = {"clientTokenUrl": f"{public_base_url.rstrip('/')}/{self.name}{CLIENT_TOKEN_PATH}"}
        if settings.tokenization_key:
            config["tokenizationKey"] = settings.tokenization_key
        return config


PACKAGE = BraintreePackage()
