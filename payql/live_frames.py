"""The graphql-transport-ws handler PayQL serves: sessions that end with their token (`ws_session`),
and `next` frames whose payload is encoded once for every subscriber sharing the result.

A live update that many subscribers asked for with the same document, variables and principal is
executed once (`schema.shared_frames`); here its payload is turned into JSON text once, and each
subscriber's frame is that text with its own operation id around it: the same bytes Strawberry
would have sent. Anything else (a result with errors, with extensions, or not shared) goes through
Strawberry's own `send_next`, so errors are still masked and sent per subscriber. Nothing here
executes, authorizes or queues: the per-subscriber queue and its limits are the live stream's.
"""

from __future__ import annotations

import json

from starlette.websockets import WebSocketDisconnect
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.schema import StreamResult
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import Operation
from strawberry.types.execution import ExecutionResult, PreExecutionError

from payql.ws_session import ExpiringSessionHandler
from schema.context import GraphQLContext
from schema.shared_frames import SHARED_LIVE_RESULTS


class LiveFramesHandler(ExpiringSessionHandler):
    async def _send_result_stream(
        self, operation: Operation[GraphQLContext, None], result_source: StreamResult
    ) -> None:
        # Strawberry's own loop, but for how a shared result is sent.
        is_first_result = True
        async for result in result_source:
            if is_first_result and isinstance(result, PreExecutionError):
                await self._handle_pre_execution_error(operation, result)
                return
            if not isinstance(result, ExecutionResult):
                await self._reject_incremental_delivery(operation)
                return
            payload = None if result.errors or result.extensions else self._shared_payload(result.data)
            if payload is None:
                await operation.send_next(result)
            elif not operation.completed:
                await self._send_text(f'{{"id":{json.dumps(operation.id)},"type":"next","payload":{payload}}}')
            is_first_result = False

    def _shared_payload(self, data: object) -> str | None:
        if not isinstance(self.websocket, ASGIWebSocketAdapter):
            return None
        return SHARED_LIVE_RESULTS.encoded_payload(data, self.view.encode_json_string)

    async def _send_text(self, frame: str) -> None:
        assert isinstance(self.websocket, ASGIWebSocketAdapter)
        try:
            await self.websocket.ws.send_text(frame)
        except WebSocketDisconnect as error:
            raise WebSocketDisconnected from error
