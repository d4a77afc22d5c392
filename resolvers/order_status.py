"""The live order-status stream: the current state first, then every change, ending on a final state.

It subscribes before it reads, so no change between the read and the subscription is lost, and
it re-reads the order from the database on every hint instead of trusting the message.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from db.models import Order
from db.transitions import ORDER_FINAL
from resolvers.context import Caller
from resolvers.payments import load_owned_order

Subscribe = Callable[[str], AbstractAsyncContextManager[AsyncIterator[dict[str, Any]]]]


def order_channel(order_id: object) -> str:
    return f"order:{order_id}"


async def watch_order(caller: Caller, order_id: str, subscribe: Subscribe) -> AsyncGenerator[Order, None]:
    order = await load_owned_order(caller, order_id)
    async with subscribe(order_channel(order.id)) as messages:
        current = await Order.get(id=order.id)
        yield current
        if current.status in ORDER_FINAL:
            return
        last_seen = (current.status, current.updated_at)
        async for _ in messages:
            current = await Order.get(id=order.id)
            if (current.status, current.updated_at) == last_seen:
                continue
            last_seen = (current.status, current.updated_at)
            yield current
            if current.status in ORDER_FINAL:
                return
