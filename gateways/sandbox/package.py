"""The sandbox as a gateway package: its settings, the factory building the processor, adapter, webhook
deliverer and `/sandbox` routes for one process, its verifier, capabilities and public configuration.

Development only: production refuses it, and its routes are mounted only where it is enabled. It allows
instances ("sandbox_backup" in PAYQL_GATEWAYS, see `gateways.catalog`): each has its own processor and
state file, fault switches, webhook secret, routes at `/<instance>` and webhooks to `/webhooks/<instance>`.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from typing import ClassVar

from starlette.routing import BaseRoute

from gateways.base import PaymentGateway
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
from gateways.sandbox.adapter import SandboxGateway
from gateways.sandbox.processor import SandboxProcessor
from gateways.sandbox.processor.route_guard import SandboxGuard
from gateways.sandbox.processor.routes import sandbox_routes
from gateways.sandbox.processor.webhook_delivery import WebhookDeliverer
from gateways.sandbox.settings import SandboxSettings
from gateways.stripe_signature import StripeSchemeVerifier


def sandbox_guard(settings: SandboxSettings, host: RouteHost, name: str) -> SandboxGuard:
    """The locks on `/<name>`: staff as the core judges it, the tokenization limit (counted per gateway),
    and the 3-D Secure form key, derived from the signing secret so every process of the installation
    signs the same forms."""
    secret = settings.webhook_secrets[0].encode()
    form_key = hmac.new(secret, b"payql sandbox 3-D Secure form", hashlib.sha256).digest()
    return SandboxGuard(
        is_staff=host.is_staff,
        form_key=form_key,
        admit_tokenization=host.rate_limiter(settings.tokenize_rate_limit, f"{name}-tokens"),
    )


class PreparedSandbox(PreparedGateway):
    """The in-process processor, its adapter, and (with background work) the deliverer of its webhooks."""

    def __init__(self, settings: SandboxSettings, *, name: str, public_base_url: str, background: bool) -> None:
        if not settings.webhook_secrets:
            raise GatewayConfigurationError(
                f"{settings.variable('webhook_secrets')}: the sandbox signs its webhooks with the first; "
                "unset, `payql` makes one per installation"
            )
        self.settings = settings
        self.name = name
        self._public_base_url = public_base_url
        self.processor = SandboxProcessor(state_path=settings.state_path)
        self.deliverer: WebhookDeliverer | None = None
        if background and settings.deliver_webhooks:
            self.deliverer = WebhookDeliverer(
                self.processor, f"{public_base_url.rstrip('/')}/webhooks/{name}", settings.webhook_secrets[0]
            )

    async def open(self) -> PaymentGateway:
        if self.settings.state_path is not None:
            self.settings.state_path.parent.mkdir(parents=True, exist_ok=True)
        await self.processor.open()
        return SandboxGateway(
            self.processor,
            public_base_url=self._public_base_url,
            webhook_secrets=self.settings.webhook_secrets,
            name=self.name,
        )

    def routes(self, host: RouteHost) -> Sequence[BaseRoute]:
        return sandbox_routes(
            self.processor, deliverer=self.deliverer, guard=sandbox_guard(self.settings, host, self.name)
        )

    async def start(self) -> None:
        if self.deliverer is not None:
            await self.deliverer.start()

    async def aclose(self) -> None:
        if self.deliverer is not None:
            await self.deliverer.aclose()


class SandboxPackage(GatewayPackage[SandboxSettings]):
    name: ClassVar[str] = "sandbox"
    settings_type: ClassVar[type[GatewaySettings]] = SandboxSettings
    development_only: ClassVar[bool] = True
    # A second sandbox ("sandbox_backup") to fail over to, in development and tests.
    allows_instances: ClassVar[bool] = True
    capabilities: ClassVar[Capabilities] = Capabilities(
        payments=True,
        manual_capture=True,
        refunds=True,
        billing=True,
        disputes=True,
        hosted_checkout=False,
        customer_directory=False,
        test_clock=True,
        # The SPA posts a test card to /sandbox/tokens and sends the token it gets as `paymentMethod`.
        # Its tokens (pm_sbx_…) and the named test methods (pm_card_visa, …), which every instance knows.
        client_tokenization=ClientTokenization(
            sdk="payql-sandbox", config_keys=("tokensUrl",), token_format=r"pm_(sbx_[0-9a-f]{24}|card_[A-Za-z]+)"
        ),
    )

    def prepare(self, settings: SandboxSettings, *, public_base_url: str, background: bool) -> PreparedSandbox:
        return PreparedSandbox(
            settings, name=self.gateway_name(settings), public_base_url=public_base_url, background=background
        )

    def webhook_verifier(self, settings: SandboxSettings) -> DeliveryVerifier:
        return StripeSchemeVerifier(settings.webhook_secrets)

    def public_config(self, settings: SandboxSettings, *, public_base_url: str) -> dict[str, str]:
        return {"tokensUrl": f"{public_base_url.rstrip('/')}/{self.gateway_name(settings)}/tokens"}


PACKAGE = SandboxPackage()
