"""The per-request GraphQL context: caller, use-case dependencies, broker, live streams and DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from strawberry.dataloader import DataLoader

from db.models import Invoice, LineItem, Payment, Price
from payql.pubsub import Broker
from resolvers.context import Caller, Deps
from resolvers.live_stream import LiveStreams


async def _load_line_items(order_ids: list[UUID]) -> list[list[LineItem]]:
    rows = await LineItem.filter(order_id__in=order_ids).order_by("id")
    by_order: dict[UUID, list[LineItem]] = {order_id: [] for order_id in order_ids}
    for row in rows:
        by_order[row.order_id].append(row)
    return [by_order[order_id] for order_id in order_ids]


async def _load_payments(order_ids: list[UUID]) -> list[list[Payment]]:
    rows = await Payment.filter(order_id__in=order_ids).order_by("created_at")
    by_order: dict[UUID, list[Payment]] = {order_id: [] for order_id in order_ids}
    for row in rows:
        by_order[row.order_id].append(row)
    return [by_order[order_id] for order_id in order_ids]


async def _load_invoices(subscription_ids: list[UUID]) -> list[list[Invoice]]:
    rows = await Invoice.filter(subscription_id__in=subscription_ids).order_by("-created_at")
    by_subscription: dict[UUID, list[Invoice]] = {subscription_id: [] for subscription_id in subscription_ids}
    for row in rows:
        by_subscription[row.subscription_id].append(row)
    return [by_subscription[subscription_id] for subscription_id in subscription_ids]


async def _load_prices(price_ids: list[UUID]) -> list[Price]:
    rows = {row.id: row for row in await Price.filter(id__in=price_ids)}
    return [rows[price_id] for price_id in price_ids]


@dataclass
class Loaders:
    line_items: DataLoader[UUID, list[LineItem]] = field(
        default_factory=lambda: DataLoader(load_fn=_load_line_items, cache=False)
    )
    payments: DataLoader[UUID, list[Payment]] = field(
        default_factory=lambda: DataLoader(load_fn=_load_payments, cache=False)
    )
    invoices: DataLoader[UUID, list[Invoice]] = field(
        default_factory=lambda: DataLoader(load_fn=_load_invoices, cache=False)
    )
    prices: DataLoader[UUID, Price] = field(default_factory=lambda: DataLoader(load_fn=_load_prices, cache=False))


@dataclass
class GraphQLContext:
    caller: Caller
    deps: Deps
    broker: Broker
    live_streams: LiveStreams
    loaders: Loaders = field(default_factory=Loaders)
    connection_params: dict[str, object] | None = None
