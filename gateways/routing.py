"""The routing policy: which gateways, in which order, may take a payment in a currency.

Pure code: no database, no network, no clock. The shopper's explicit choice is honoured as it is and
never re-routed; otherwise the table (`PAYQL_ROUTING`, e.g. "USD:stripe,paypal;EUR:paypal;*:sandbox")
gives an ordered list per currency, "*" for every other currency, and the enabled gateways in their
configured order when nothing is said. Gateways that cannot take the payment right now (an open
circuit, a missing capability) are skipped by the `usable` predicate the caller passes. Nothing here
names a provider.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

ANY_CURRENCY = "*"


class RoutingConfigurationError(ValueError):
    """PAYQL_ROUTING cannot be read, or names a gateway that is not enabled."""


@dataclass(frozen=True, slots=True)
class RoutingTable:
    """Ordered gateway names per ISO currency (upper case), with `ANY_CURRENCY` for the rest."""

    enabled: tuple[str, ...]
    routes: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: MappingProxyType({}))

    @classmethod
    def parse(cls, text: str, enabled: Sequence[str]) -> RoutingTable:
        """`text` is "CUR:gw,gw;CUR:gw;*:gw"; empty means the enabled gateways in order for every currency."""
        routes: dict[str, tuple[str, ...]] = {}
        for rule in (part.strip() for part in text.split(";")):
            if not rule:
                continue
            currency, separator, names = rule.partition(":")
            currency = currency.strip().upper()
            gateways = tuple(name.strip() for name in names.split(",") if name.strip())
            if not separator or not gateways or not (currency == ANY_CURRENCY or _is_currency(currency)):
                raise RoutingConfigurationError(f"PAYQL_ROUTING: {rule!r} is not 'CURRENCY:gateway,gateway'")
            if currency in routes:
                raise RoutingConfigurationError(f"PAYQL_ROUTING: {currency} is routed twice")
            unknown = [name for name in gateways if name not in enabled]
            if unknown:
                raise RoutingConfigurationError(
                    f"PAYQL_ROUTING: {', '.join(unknown)} not enabled (enable it or remove the route)"
                )
            if len(set(gateways)) != len(gateways):
                raise RoutingConfigurationError(f"PAYQL_ROUTING: {currency} names a gateway twice")
            routes[currency] = gateways
        return cls(tuple(enabled), MappingProxyType(routes))

    def candidates(self, currency: str) -> tuple[str, ...]:
        """Every gateway the table allows for `currency`, in order, before health and capabilities."""
        return self.routes.get(currency.upper(), self.routes.get(ANY_CURRENCY, self.enabled))


def route(table: RoutingTable, currency: str, *, chosen: str | None, usable: Callable[[str], bool]) -> tuple[str, ...]:
    """The gateways to try, in order: the chosen one alone (never re-routed), else the usable candidates."""
    if chosen is not None:
        return (chosen,)
    return tuple(name for name in table.candidates(currency) if usable(name))


def _is_currency(code: str) -> bool:
    return len(code) == 3 and code.isascii() and code.isalpha()
