"""A graphql-transport-ws connection that lives no longer than the token it was opened with.

The token in `connection_init` is verified once; its `exp` then bounds the socket: after it, a new
operation is answered with an UNAUTHENTICATED error and every live subscription ends with that
error (queries and mutations already running finish: cutting a payment short helps nobody).
The client reconnects with a fresh token. Nothing here verifies tokens or counts anything.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import suppress
from typing import Final

from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler, Operation
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    SubscribeMessage,
)

from payql.metrics import OPEN_WEBSOCKETS
from schema.context import GraphQLContext

SESSION_EXPIRED: Final = GraphQLError(
    "The session's token has expired. Reconnect with a new token.", extensions={"code": "UNAUTHENTICATED"}
)


class ExpiringSessionHandler(BaseGraphQLTransportWSHandler[GraphQLContext, None]):
    _expiry: asyncio.Task[None] | None = None

    @property
    def _expires_at(self) -> float | None:
        principal = self.context.caller.principal
        return principal.expires_at if principal is not None else None

    def _expired(self) -> bool:
        expires_at = self._expires_at
        return expires_at is not None and time.time() >= expires_at

    async def handle(self) -> None:
        OPEN_WEBSOCKETS.inc()
        try:
            await super().handle()
        finally:
            OPEN_WEBSOCKETS.dec()

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        if self.connection_acknowledged and self._expires_at is not None and self._expiry is None:
            self._expiry = asyncio.create_task(self._end_session_at(self._expires_at))

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged and self._expired():
            await self.send_message(_expired_message(message["id"]))
            return
        await super().handle_subscribe(message)

    async def _end_session_at(self, expires_at: float) -> None:
        await asyncio.sleep(max(0.0, expires_at - time.time()))
        for operation in list(self.operations.values()):
            if _is_subscription(operation):
                await operation.send_operation_message(_expired_message(operation.id))
                if operation.task is not None:
                    operation.task.cancel()

    async def shutdown(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
            with suppress(asyncio.CancelledError):
                await self._expiry
        await super().shutdown()


def _expired_message(operation_id: str) -> ErrorMessage:
    return {"id": operation_id, "type": "error", "payload": [SESSION_EXPIRED.formatted]}


def _is_subscription(operation: Operation[GraphQLContext, None]) -> bool:
    try:
        document = parse(operation.query)
    except GraphQLError:
        return False
    definitions = [node for node in document.definitions if isinstance(node, OperationDefinitionNode)]
    chosen = next(
        (node for node in definitions if node.name is not None and node.name.value == operation.operation_name),
        definitions[0] if len(definitions) == 1 else None,
    )
    return chosen is not None and chosen.operation is OperationType.SUBSCRIPTION
