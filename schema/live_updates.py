"""Subscription fields over websockets (graphql-transport-ws), each holding a live-subscription slot."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager

import strawberry

from resolvers.errors import ErrorCode, UseCaseError
from resolvers.order_status import watch_order
from resolvers.subscription_status import watch_subscription
from schema.billing.types import SubscriptionType
from schema.errors import public_error
from schema.types import GraphQLInfo, OrderType


@asynccontextmanager
async def live_slot(info: GraphQLInfo) -> AsyncIterator[None]:
    """Hold one of the caller's live-subscription slots (per principal, anonymous: per IP, across
    every connection) while the body runs; refuse with RATE_LIMITED when none is free."""
    async with info.context.deps.live_subscriptions.hold(info.context.caller.limit_key) as held:
        if not held:
            raise public_error(
                UseCaseError(ErrorCode.RATE_LIMITED, "Too many live updates are open. Close one and try again.")
            )
        yield


@strawberry.type(name="LiveUpdates", description="Websocket fields (GraphQL's subscription root).")
class Subscription:
    @strawberry.subscription(description="The order's current state, then every change; completes after a final state.")
    async def order_status(self, info: GraphQLInfo, order_id: strawberry.ID) -> AsyncGenerator[OrderType, None]:
        async with live_slot(info):
            stream = watch_order(info.context.caller, str(order_id), info.context.live_streams)
            try:
                async for order in stream:
                    yield OrderType.from_model(order)
            except UseCaseError as error:
                raise public_error(error) from None
            finally:
                await stream.aclose()

    @strawberry.subscription(
        description="The subscription's current state, then every change; completes once it has ended."
    )
    async def subscription_status(
        self, info: GraphQLInfo, subscription_id: strawberry.ID
    ) -> AsyncGenerator[SubscriptionType, None]:
        async with live_slot(info):
            stream = watch_subscription(info.context.caller, str(subscription_id), info.context.live_streams)
            try:
                async for subscription in stream:
                    yield SubscriptionType.from_model(subscription)
            except UseCaseError as error:
                raise public_error(error) from None
            finally:
                await stream.aclose()
