"""Subscription fields over websockets (graphql-transport-ws), each holding a live-subscription slot."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from typing import TypeVar

import strawberry

from resolvers.errors import ErrorCode, UseCaseError
from resolvers.order_status import watch_order
from resolvers.subscription_status import watch_subscription
from schema.billing.types import SubscriptionType
from schema.errors import public_error
from schema.shared_frames import SHARED_LIVE_RESULTS
from schema.types import GraphQLInfo, OrderType

Row = TypeVar("Row")
Shown = TypeVar("Shown")


@asynccontextmanager
async def live_slot(info: GraphQLInfo) -> AsyncIterator[None]:
    """Hold one of the caller's live-subscription slots (per principal, anonymous: per IP, across
    every connection) while the body runs; refuse with RATE_LIMITED when none is free."""
    async with info.context.deps.live_subscriptions.hold(info.context.caller.limit_key) as held:
        if not held:
            raise UseCaseError(ErrorCode.RATE_LIMITED, "Too many live updates are open. Close one and try again.")
        yield


async def relay(
    info: GraphQLInfo, stream: AsyncGenerator[Row, None], present: Callable[[Row], Shown]
) -> AsyncGenerator[Shown, None]:
    """Every item of a use case's `stream`, presented, while the caller holds a live slot; a refused
    slot or the stream's `UseCaseError` leaves coded, as from any other field, and the stream is
    always closed. A row read handed to many subscribers is presented once, and that one value is
    what `SharedLiveExecution` executes once per document for all of them."""
    async with aclosing(stream):
        try:
            async with live_slot(info):
                async for row in stream:
                    yield SHARED_LIVE_RESULTS.presented(row, present)
        except UseCaseError as error:
            raise public_error(error) from None


@strawberry.type(name="LiveUpdates", description="Websocket fields (GraphQL's subscription root).")
class Subscription:
    @strawberry.subscription(description="The order's current state, then every change; completes after a final state.")
    async def order_status(self, info: GraphQLInfo, order_id: strawberry.ID) -> AsyncGenerator[OrderType, None]:
        stream = watch_order(info.context.caller, str(order_id), info.context.live_streams)
        async with aclosing(relay(info, stream, OrderType.from_model)) as orders:
            async for order in orders:
                yield order

    @strawberry.subscription(
        description="The subscription's current state, then every change; completes once it has ended."
    )
    async def subscription_status(
        self, info: GraphQLInfo, subscription_id: strawberry.ID
    ) -> AsyncGenerator[SubscriptionType, None]:
        stream = watch_subscription(info.context.caller, str(subscription_id), info.context.live_streams)
        async with aclosing(relay(info, stream, SubscriptionType.from_model)) as subscriptions:
            async for subscription in subscriptions:
                yield subscription
