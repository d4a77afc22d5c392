"""What a use case needs to know about its caller and its collaborators, passed in explicitly."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Protocol

from db.transitions import Actor
from domain.cancel_policy import CancelPolicy
from domain.dunning import BillingPolicy
from gateways.registry import GatewayRegistry
from payql.outbound_urls import OutboundPolicy
from resolvers.errors import ErrorCode, UseCaseError


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    is_admin: bool = False
    email: str | None = None
    # The token's `exp` (Unix seconds): a websocket opened with it stops serving operations then.
    expires_at: float | None = None

    @property
    def actor_name(self) -> str:
        return f"{'admin' if self.is_admin else 'customer'}:{self.subject}"


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal | None
    request_id: str | None = None
    source_ip: str | None = None
    user_agent: str | None = None

    def require_principal(self) -> Principal:
        if self.principal is None:
            raise UseCaseError(ErrorCode.UNAUTHENTICATED, "Sign in to continue.")
        return self.principal

    def require_admin(self) -> Principal:
        principal = self.require_principal()
        if not principal.is_admin:
            raise UseCaseError(ErrorCode.FORBIDDEN, "Only merchant staff can do this.")
        return principal

    @property
    def limit_key(self) -> str:
        """Whom a limit counts against: the principal, or for an anonymous caller its address."""
        return self.principal.actor_name if self.principal else f"ip:{self.source_ip or 'unknown'}"

    def actor(self, reason: str = "") -> Actor:
        name = self.principal.actor_name if self.principal else "anonymous"
        return Actor(name=name, request_id=self.request_id, source_ip=self.source_ip, reason=reason)


class RateLimiter(Protocol):
    async def hit(self, principal_key: str) -> bool: ...


class LiveSubscriptionSlots(Protocol):
    """A cap on live subscriptions per holder (`Caller.limit_key`), however many connections."""

    def hold(self, holder: str) -> AbstractAsyncContextManager[bool]:
        """Enter with True while a slot is held (released on exit), False when the holder is at its cap."""
        ...


@dataclass(frozen=True, slots=True)
class PaymentPolicy:
    idempotency_ttl_seconds: int
    idempotency_lease_seconds: float
    # Where a gateway may send the shopper back to: the SPAs' origins, never an arbitrary site.
    return_origins: frozenset[str] = frozenset()
    billing: BillingPolicy = field(default_factory=BillingPolicy)
    cancel: CancelPolicy = field(default_factory=CancelPolicy)


@dataclass(frozen=True, slots=True)
class Deps:
    gateways: GatewayRegistry
    rate_limiter: RateLimiter
    policy: PaymentPolicy
    # completePayment reads the gateway on every call, so it has its own per-principal limit.
    complete_limiter: RateLimiter
    live_subscriptions: LiveSubscriptionSlots
    # Where merchant webhook endpoints may point (SSRF); the strict policy unless wiring says otherwise.
    outbound: OutboundPolicy = field(default_factory=lambda: OutboundPolicy(require_https=True, allow_private=False))
