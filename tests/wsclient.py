"""A minimal graphql-transport-ws client over a real websocket, for subscription tests."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from websockets.asyncio.client import ClientConnection, connect


class GraphQLWebSocket:
    def __init__(self, connection: ClientConnection) -> None:
        self.connection = connection

    async def receive(self) -> dict[str, Any]:
        message: dict[str, Any] = json.loads(await self.connection.recv())
        return message

    async def subscribe(self, query: str, variables: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """Yield each `next` payload; stop at `complete`; an `error` message is yielded as is."""
        operation_id = uuid.uuid4().hex
        await self.connection.send(
            json.dumps({"id": operation_id, "type": "subscribe", "payload": {"query": query, "variables": variables}})
        )
        while True:
            message = await self.receive()
            if message.get("id") != operation_id:
                continue
            if message["type"] == "complete":
                return
            yield message
            if message["type"] == "error":
                return


@asynccontextmanager
async def graphql_ws(
    base_url: str, token: str | None, origin: str | None = None, local_address: str | None = None
) -> AsyncIterator[GraphQLWebSocket]:
    url = base_url.replace("http://", "ws://") + "/graphql"
    headers = {"Origin": origin} if origin else None
    bind = {"local_addr": (local_address, 0)} if local_address else {}
    async with connect(url, subprotocols=["graphql-transport-ws"], additional_headers=headers, **bind) as connection:  # type: ignore[list-item,arg-type]
        payload = {"authorization": f"Bearer {token}"} if token else {}
        await connection.send(json.dumps({"type": "connection_init", "payload": payload}))
        ack = json.loads(await connection.recv())
        assert ack["type"] == "connection_ack", ack
        yield GraphQLWebSocket(connection)
