"""The gateway package contract: what one provider's package tells the core about itself.

Each provider folder (`gateways/<name>/`) has a `package.py` whose `PACKAGE` is a `GatewayPackage`: its
settings class (its own `PAYQL_<NAME>_` variables), the factory that builds its adapter for a process,
its webhook verifier, its declared capabilities and the public configuration the SPA may read. The core
finds packages through `gateways.catalog` by name and asks capabilities through the protocols in
`gateways/` (`BillingGateway`, `HostedCheckoutGateway`, `CustomerDirectory`, `ClockControlGateway`,
`ShopperReturnGateway`); it never names a provider. Nothing here reads PayQL's settings or database: a
package gets its values from its own settings class, and the few things the core lends it (who is staff, a
rate limiter) are passed in.

A package that sets `allows_instances` may run several times side by side (`gateways.catalog` says how
they are named): each instance gets settings of its own prefix (`GatewaySettings.for_instance`) whose
`instance` names it, and the package builds an adapter, routes and webhook URLs under that name
(`GatewayPackage.gateway_name`). Such a package's settings never name an environment variable of their
own (no `validation_alias`): an instance would read the package's variable instead of its own.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, TypeVar

from pydantic import ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from starlette.routing import BaseRoute

from gateways.base import PaymentGateway
from gateways.types import VerifiedEvent, WebhookDelivery


class GatewaySettings(BaseSettings):
    """A package's settings: subclasses set `env_prefix` ("PAYQL_<NAME>_"); list fields are comma-separated."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    # A list field the core fills with a secret made per installation when development leaves it empty.
    development_secret_field: ClassVar[str | None] = None
    # The gateway these settings configure when it is an instance of its package (`for_instance`);
    # empty for the package itself.
    instance: ClassVar[str] = ""

    @classmethod
    def for_instance(cls, name: str) -> type[GatewaySettings]:
        """These settings for the instance `name` of their package: read from `PAYQL_<NAME>_*`."""
        aliased = [field for field, info in cls.model_fields.items() if info.validation_alias is not None]
        if aliased:
            raise TypeError(f"{cls.__name__}: {', '.join(aliased)} name their own variables; an instance cannot")
        config = SettingsConfigDict(**{**cls.model_config, "env_prefix": f"PAYQL_{name.upper()}_"})
        namespace = {"model_config": config, "instance": name, "__module__": cls.__module__}
        instance_type: type[GatewaySettings] = type(f"{cls.__name__}[{name}]", (cls,), namespace)
        return instance_type

    def problems_when_enabled(self) -> list[str]:
        """What is missing for this gateway to run, one "VARIABLE: what to do" each (empty: ready)."""
        return []

    def published_secret_problems(self) -> list[str]:
        """Settings holding a value published in PayQL's repository (an old development default), refused
        everywhere, one "VARIABLE: what to do" each."""
        return []

    @classmethod
    def variable(cls, field: str) -> str:
        """The environment variable of `field` (or of an error's location, already a variable when aliased)."""
        return field if field.isupper() else f"{cls.model_config.get('env_prefix', '')}{field}".upper()

    @field_validator("*", mode="before")
    @classmethod
    def _comma_separated(cls, value: object, info: ValidationInfo) -> object:
        annotation = cls.model_fields[info.field_name or ""].annotation
        if isinstance(value, str) and getattr(annotation, "__origin__", None) is list:
            return [item.strip() for item in value.split(",") if item.strip()]
        return value


S = TypeVar("S", bound=GatewaySettings)


def settings_problems(
    settings_type: type[GatewaySettings], given: Mapping[str, Any]
) -> tuple[GatewaySettings | None, list[str]]:
    """Load `settings_type` from the environment (and `given` values); problems name their variables."""
    try:
        return settings_type(**given), []
    except ValidationError as error:
        problems = []
        for detail in error.errors():
            message = str(detail["msg"]).removeprefix("Value error, ")
            field = ".".join(str(part) for part in detail["loc"])
            problems.extend([f"{settings_type.variable(field)}: {message}"] if field else message.split("; "))
        return None, problems


@dataclass(frozen=True, slots=True)
class ClientTokenization:
    """How the SPA turns a card into the `paymentMethod` it sends: the browser SDK to load and the
    public configuration keys (`PaymentOption.publicConfig`) that SDK needs."""

    sdk: str
    config_keys: tuple[str, ...] = ()
    # A regular expression a `paymentMethod` this SDK makes matches in full (the provider's documented token
    # shapes); None when they cannot be told apart from another provider's. Failover reads it: a token
    # belongs to the gateway that issued it and is carried to another only when that one would know it.
    token_format: str | None = None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a gateway can do, declared by its package. The core still asks the matching protocol before
    calling a verb; the contract tests hold the declaration and the adapter's protocols to each other."""

    payments: bool
    manual_capture: bool
    refunds: bool
    billing: bool
    disputes: bool
    hosted_checkout: bool
    customer_directory: bool
    # Test-only clocks a staff caller may move (the sandbox's); never on a gateway that reaches real money.
    test_clock: bool = False
    # The SPA sends back what the provider's checkout handed it (`ShopperReturnGateway`) with completePayment.
    shopper_return: bool = False
    # A charge needs no payment method collected beforehand: its answer (an approval redirect, the provider's
    # checkout opened through nextAction) collects one from the shopper. Failover can move a payment here
    # whatever the shopper had tokenized elsewhere.
    collects_payment_method: bool = False
    client_tokenization: ClientTokenization | None = None


class DeliveryVerifier(Protocol):
    async def verify_webhook(self, delivery: WebhookDelivery) -> VerifiedEvent:
        """The verified event; raises `WebhookRejected`, never returns an unverified one."""
        ...


@dataclass(frozen=True, slots=True)
class RouteHost:
    """What the core lends a package's HTTP routes: who is staff (an Authorization header) and a
    per-client rate limiter factory ((limit, namespace) → admit(client) → seconds to wait, or None)."""

    is_staff: Callable[[str | None], bool]
    rate_limiter: Callable[[str, str], Callable[[str], Awaitable[int | None]]]


class PreparedGateway(ABC):
    """One process's instance of an enabled package: its adapter and what else it runs.

    Prepared before the app is built (routes are mounted then); `open` runs in the lifespan.
    """

    @abstractmethod
    async def open(self) -> PaymentGateway:
        """The adapter, built once per process (the registry closes it)."""

    def routes(self, host: RouteHost) -> Sequence[BaseRoute]:
        """HTTP routes mounted at `/<name>` (outside production only, for a development-only package)."""
        return ()

    async def start(self) -> None:
        """Start background work (a server process; a CLI command never calls this). None by default."""
        return None

    async def aclose(self) -> None:
        """Stop the background work `start` began."""
        return None


class FactoryPrepared(PreparedGateway):
    """A package with nothing but its adapter: `open` calls the factory."""

    def __init__(self, factory: Callable[[], PaymentGateway]) -> None:
        self._factory = factory

    async def open(self) -> PaymentGateway:
        return self._factory()


class GatewayConfigurationError(RuntimeError):
    """An enabled package cannot be built from its settings; the message names the variable."""


class GatewayPackage(ABC, Generic[S]):
    name: ClassVar[str]
    settings_type: ClassVar[type[GatewaySettings]]
    capabilities: ClassVar[Capabilities]
    # Refused in production (PAYQL_GATEWAYS names it there) and its routes are never mounted there.
    development_only: ClassVar[bool] = False
    # Several instances may run side by side ("<name>_<suffix>" in PAYQL_GATEWAYS, see `gateways.catalog`);
    # `prepare` then builds each under `gateway_name(settings)`, never under the package's own name.
    allows_instances: ClassVar[bool] = False

    def gateway_name(self, settings: GatewaySettings) -> str:
        """The name the gateway these settings configure runs under: the instance's, or the package's."""
        return settings.instance or self.name

    @abstractmethod
    def prepare(self, settings: S, *, public_base_url: str, background: bool) -> PreparedGateway:
        """The factory: this process's instance. `background` is False in CLI commands."""

    @abstractmethod
    def webhook_verifier(self, settings: S) -> DeliveryVerifier:
        """The verifier the adapter checks deliveries with, built from the settings alone."""

    def public_config(self, settings: S, *, public_base_url: str) -> dict[str, str]:
        """What the SPA may read (publishable keys, client ids); never a secret. Unset values are left out."""
        return {}
