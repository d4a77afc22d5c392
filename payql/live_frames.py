"""The graphql-transport-ws handler PayQL serves: sessions that end with their token (`ws_session`),
and `next` frames whose payload is encoded once for every subscriber sharing the result.

A live update that many subscribers asked for with the same document, variables and principal is
executed once (`schema.shared_frames`); here its payload is turned into JSON text once, and each
subscriber's frame is that text with its own operation id around it: the same bytes Strawberry
would have sent. Anything else (a result with errors, with extensions, or not shared) goes through
Strawberry's own `send_next`, so errors are still masked and sent per subscriber.

Once a subscriber was sent a shared result, its later versions skip Strawberry and graphql-core
altogether when they can: the operation task takes the next version from the subscriber's own
bounded queue (`resolvers.live_stream.DirectLane`): the one subscriber's task that executed a version
writes its frame to every other subscriber with the same key that waits for it, from one loop, so
their tasks are not woken for it. Anything else (an execution still to run, an error, the end, a
subscriber too slow to keep up, a socket that cannot take a frame at once) is handed back to the
subscriber's own task and pulled through Strawberry's path as before.

A shared frame is sent through the server's own send, kept in the socket's scope by the outermost
layer (`KeepWebSocketSend`), not through every layer's wrapper of it; every other message of the
socket goes through all of them. Nothing here executes, authorizes or queues: the per-subscriber
queue and its limits are the live stream's, and what must never happen here is a frame built for
another key than the subscriber's own, or a frame written to a subscriber that left.
"""

from __future__ import annotations

import json
from collections.abc import Hashable
from functools import partial
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketDisconnect, WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.schema import StreamResult
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation
from strawberry.types.execution import ExecutionResult, PreExecutionError

from payql.ws_session import ExpiringSessionHandler
from resolvers.live_stream import DIRECT_LANE, DirectLane
from schema.context import GraphQLContext
from schema.shared_frames import SHARED_LIVE_RESULTS

# Where `KeepWebSocketSend` keeps the server's own send in a websocket's scope.
WEBSOCKET_SEND: Final = "payql.websocket_send"


class LiveFramesHandler(ExpiringSessionHandler):
    async def _send_result_stream(
        self, operation: Operation[GraphQLContext, None], result_source: StreamResult
    ) -> None:
        lane = DirectLane()
        DIRECT_LANE.set(lane)  # this task's context only: the stream attaches its queue to it
        try:
            await self._send_results(operation, result_source, lane)
        finally:
            lane.close()

    async def _send_results(
        self, operation: Operation[GraphQLContext, None], result_source: StreamResult, lane: DirectLane
    ) -> None:
        # Strawberry's own loop, but for how a shared result is sent and where the next one comes from.
        is_first_result = True
        while True:
            if lane.joined:
                payload = await lane.take()
                if payload is not None:
                    await self._send_shared(operation, payload)
                    continue
            try:
                result = await anext(result_source)
            except StopAsyncIteration:
                return
            finally:
                # Executed (or failed): the subscribers waiting on this one get theirs first.
                lane.release()
            if is_first_result and isinstance(result, PreExecutionError):
                await self._handle_pre_execution_error(operation, result)
                return
            if not isinstance(result, ExecutionResult):
                await self._reject_incremental_delivery(operation)
                return
            payload = None if result.errors or result.extensions else self._shared_payload(result.data)
            if payload is None:
                await operation.send_next(result)
            else:
                key = SHARED_LIVE_RESULTS.key_of(result.data)
                if key is not None:
                    # The frame's envelope is the same for each of the operation's versions: built once.
                    write = partial(self._send_shared, operation, head=_next_frame_head(operation.id))
                    lane.join(key, partial(self._ready_payload, key=key), write)
                await self._send_shared(operation, payload)
            is_first_result = False

    async def _send_shared(
        self, operation: Operation[GraphQLContext, None], payload: str, head: str | None = None
    ) -> None:
        if not operation.completed:
            await self._send_text((head or _next_frame_head(operation.id)) + payload + "}")

    def _ready_payload(self, row: object, *, key: Hashable) -> str | None:
        return SHARED_LIVE_RESULTS.ready_payload(row, key, self.view.encode_json_string)

    def _shared_payload(self, data: object) -> str | None:
        if not isinstance(self.websocket, ASGIWebSocketAdapter):
            return None
        return SHARED_LIVE_RESULTS.encoded_payload(data, self.view.encode_json_string)

    async def _send_text(self, frame: str) -> None:
        assert isinstance(self.websocket, ASGIWebSocketAdapter)
        websocket = self.websocket.ws
        send: Send | None = websocket.scope.get(WEBSOCKET_SEND)
        try:
            if send is None or websocket.application_state is not WebSocketState.CONNECTED:
                await websocket.send_text(frame)
            else:
                await send({"type": "websocket.send", "text": frame})
        except (WebSocketDisconnect, OSError) as error:
            raise WebSocketDisconnected from error


def _next_frame_head(operation_id: str) -> str:
    """A `next` frame up to its payload; the frame is this, the payload, and "}"."""
    return f'{{"id":{json.dumps(operation_id)},"type":"next","payload":'


class KeepWebSocketSend:
    """The outermost layer: a websocket's send as the server gave it, kept in its scope.

    A shared `next` frame goes out through it (`LiveFramesHandler._send_text`) rather than through
    every layer's wrapper of send: none of them does anything with a `websocket.send` message (the
    request id and the security headers go on the handshake's answer, the trace's per-message spans
    are off), and together they cost a subscriber about a tenth of a frame's sending. Every other
    message of the socket (accept, errors, completion, close) still goes through all of them.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope[WEBSOCKET_SEND] = send
        await self.app(scope, receive, send)
