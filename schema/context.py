"""The per-request GraphQL context: caller, use-case dependencies, broker, live streams and DataLoaders.

The schema reaches pub/sub only through `LiveBroker` (what `payql.pubsub`'s brokers satisfy), so
`schema/` never imports the app's wiring.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar
from uuid import UUID

from strawberry.dataloader import DataLoader
from tortoise.models import Model

from db.models import Invoice, LineItem, Payment, PaymentEvent, Price, Refund
from resolvers.context import Caller, Deps
from resolvers.live_stream import LiveStreams

M = TypeVar("M", bound=Model)


class LiveBroker(Protocol):
    """The live fields' side of the pub/sub broker: hints that an entity changed, never the entity."""

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]: ...


def _grouped(
    model: type[M], key: str, order_by: str
) -> Callable[[list[UUID]], Coroutine[object, object, list[list[M]]]]:
    """A DataLoader batch function: the rows of `model` whose `key` is each asked-for id, in `order_by`
    order, one list per id (empty when it has none)."""

    async def load(ids: list[UUID]) -> list[list[M]]:
        by_key: dict[UUID, list[M]] = {row_id: [] for row_id in ids}
        for row in await model.filter(**{f"{key}__in": ids}).order_by(order_by):
            by_key[getattr(row, key)].append(row)
        return [by_key[row_id] for row_id in ids]

    return load


async def _load_prices(price_ids: list[UUID]) -> list[Price]:
    rows = {row.id: row for row in await Price.filter(id__in=price_ids)}
    return [rows[price_id] for price_id in price_ids]


@dataclass
class Loaders:
    line_items: DataLoader[UUID, list[LineItem]] = field(
        default_factory=lambda: DataLoader(load_fn=_grouped(LineItem, "order_id", "id"), cache=False)
    )
    payments: DataLoader[UUID, list[Payment]] = field(
        default_factory=lambda: DataLoader(load_fn=_grouped(Payment, "order_id", "created_at"), cache=False)
    )
    refunds: DataLoader[UUID, list[Refund]] = field(
        default_factory=lambda: DataLoader(load_fn=_grouped(Refund, "payment_id", "created_at"), cache=False)
    )
    ledger: DataLoader[UUID, list[PaymentEvent]] = field(
        default_factory=lambda: DataLoader(load_fn=_grouped(PaymentEvent, "payment_id", "id"), cache=False)
    )
    invoices: DataLoader[UUID, list[Invoice]] = field(
        default_factory=lambda: DataLoader(load_fn=_grouped(Invoice, "subscription_id", "-created_at"), cache=False)
    )
    prices: DataLoader[UUID, Price] = field(default_factory=lambda: DataLoader(load_fn=_load_prices, cache=False))


@dataclass
class GraphQLContext:
    caller: Caller
    deps: Deps
    broker: LiveBroker
    live_streams: LiveStreams
    loaders: Loaders = field(default_factory=Loaders)
    connection_params: dict[str, object] | None = None
