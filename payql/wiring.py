"""Build the process-wide services from settings, once at start-up, and tear them down at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from db.unit_of_work import StatusChange, add_change_listener, remove_change_listener
from gateways.base import PaymentGateway
from gateways.registry import GatewayRegistry
from gateways.sandbox.adapter import SandboxGateway
from gateways.sandbox.processor import SandboxProcessor
from payql.auth import TokenVerifier
from payql.pubsub import Broker, InMemoryBroker, RedisBroker
from payql.rate_limit import PaymentRateLimiter
from payql.settings import Settings
from resolvers.context import Deps, PaymentPolicy
from resolvers.order_status import order_channel


class ConfigurationError(RuntimeError):
    pass


@dataclass
class Services:
    settings: Settings
    deps: Deps
    broker: Broker
    tokens: TokenVerifier
    sandbox: SandboxProcessor | None
    redis: Redis | None

    async def publish_changes(self, changes: list[StatusChange]) -> None:
        for order_id in dict.fromkeys(change.order_id for change in changes):
            await self.broker.publish(order_channel(order_id), {"order_id": str(order_id)})

    async def aclose(self) -> None:
        remove_change_listener(self.publish_changes)
        await self.deps.gateways.aclose()
        await self.broker.aclose()
        if self.redis is not None:
            await self.redis.aclose()


def sandbox_processor(settings: Settings) -> SandboxProcessor | None:
    """The in-process sandbox, when configured; never in production (settings refuse it there)."""
    if "sandbox" not in settings.gateways or settings.is_production:
        return None
    return SandboxProcessor(state_path=settings.sandbox_state_path)


async def build_services(settings: Settings, sandbox: SandboxProcessor | None) -> Services:
    gateways: list[PaymentGateway] = []
    for name in settings.gateways:
        if name == "sandbox" and sandbox is not None:
            await sandbox.open()
            gateways.append(SandboxGateway(sandbox, public_base_url=settings.public_base_url))
        else:
            raise ConfigurationError(f"PAYQL_GATEWAYS: gateway {name!r} is not available in this build")

    redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
    broker: Broker = RedisBroker(redis, settings.redis_key_prefix) if redis else InMemoryBroker()
    deps = Deps(
        gateways=GatewayRegistry(gateways),
        rate_limiter=PaymentRateLimiter(settings.payment_rate_limit, redis, settings.redis_key_prefix),
        policy=PaymentPolicy(
            idempotency_ttl_seconds=settings.idempotency_ttl_seconds,
            idempotency_lease_seconds=settings.idempotency_lease_seconds,
        ),
    )
    services = Services(
        settings=settings,
        deps=deps,
        broker=broker,
        tokens=TokenVerifier(settings),
        sandbox=sandbox,
        redis=redis,
    )
    add_change_listener(services.publish_changes)
    return services
