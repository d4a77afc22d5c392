"""The per-request GraphQL context: caller, use-case dependencies, broker and DataLoaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

from strawberry.dataloader import DataLoader

from db.models import LineItem, Payment
from payql.pubsub import Broker
from resolvers.context import Caller, Deps


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


@dataclass
class Loaders:
    line_items: DataLoader[UUID, list[LineItem]] = field(
        default_factory=lambda: DataLoader(load_fn=_load_line_items, cache=False)
    )
    payments: DataLoader[UUID, list[Payment]] = field(
        default_factory=lambda: DataLoader(load_fn=_load_payments, cache=False)
    )


@dataclass
class GraphQLContext:
    caller: Caller
    deps: Deps
    broker: Broker
    loaders: Loaders = field(default_factory=Loaders)
    connection_params: dict[str, object] | None = None
