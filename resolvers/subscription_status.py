"""The live subscription-status stream: the current state first, then every change, ending once the
subscription has ended. Like the order stream, it subscribes before it reads and re-reads the
database on every hint instead of trusting the message."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from db.models import Subscription
from db.subscriptions import subscription_channel
from domain.statuses import SUBSCRIPTION_ENDED
from resolvers.context import Caller
from resolvers.order_status import Subscribe
from resolvers.subscriptions import load_owned_subscription


async def watch_subscription(
    caller: Caller, subscription_id: str, subscribe: Subscribe
) -> AsyncGenerator[Subscription, None]:
    owned = await load_owned_subscription(caller, subscription_id)
    async with subscribe(subscription_channel(owned.id)) as messages:
        current = await Subscription.get(id=owned.id)
        yield current
        if current.status in SUBSCRIPTION_ENDED:
            return
        last_seen = current.updated_at
        async for _ in messages:
            current = await Subscription.get(id=owned.id)
            if current.updated_at == last_seen:
                continue
            last_seen = current.updated_at
            yield current
            if current.status in SUBSCRIPTION_ENDED:
                return
