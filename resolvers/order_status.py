"""The live order-status stream: the current state first, then every change, ending on a final state.

The caller must own the order (checked here, once per subscriber); the watching itself is the
shared loop of `resolvers.live_stream`, so every subscriber of one order shares one read per change.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from db.models import Order
from db.transitions import ORDER_FINAL
from resolvers.context import Caller
from resolvers.live_stream import LiveStreams, WatchedRow
from resolvers.payments import load_owned_order


def order_channel(order_id: object) -> str:
    return f"order:{order_id}"


async def watch_order(caller: Caller, order_id: str, streams: LiveStreams) -> AsyncGenerator[Order, None]:
    owned = await load_owned_order(caller, order_id)

    async def read() -> Order:
        return await Order.get(id=owned.id)

    row = WatchedRow(
        channel=order_channel(owned.id),
        read=read,
        version=lambda order: (order.status, order.updated_at),
        is_final=lambda order: order.status in ORDER_FINAL,
    )
    # Closed explicitly: a client that unsubscribes must leave the shared watch at once.
    async with aclosing(streams.stream(row)) as updates:
        async for order in updates:
            yield order
