"""The live subscription-status stream: the current state first, then every change, ending once the
subscription has ended. The caller must own the subscription; the watching is the shared loop of
`resolvers.live_stream`, like the order stream's."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from db.models import Subscription
from db.subscriptions import subscription_channel
from domain.statuses import SUBSCRIPTION_ENDED
from resolvers.context import Caller
from resolvers.live_stream import LiveStreams, WatchedRow
from resolvers.subscriptions import load_owned_subscription


async def watch_subscription(
    caller: Caller, subscription_id: str, streams: LiveStreams
) -> AsyncGenerator[Subscription, None]:
    owned = await load_owned_subscription(caller, subscription_id)

    async def read() -> Subscription:
        return await Subscription.get(id=owned.id)

    row = WatchedRow(
        channel=subscription_channel(owned.id),
        read=read,
        version=lambda subscription: subscription.updated_at,
        is_final=lambda subscription: subscription.status in SUBSCRIPTION_ENDED,
    )
    # Closed explicitly: a client that unsubscribes must leave the shared watch at once.
    async with aclosing(streams.stream(row)) as updates:
        async for subscription in updates:
            yield subscription
