"""The Strawberry ASGI view: builds the per-request context and authenticates websockets.

HTTP requests carry `Authorization: Bearer …`; websockets carry it in the `connection_init`
payload (browsers cannot set headers on a websocket). Cross-origin websocket handshakes are
checked against the same allow-list as CORS.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UnsetType

from payql.graphql_request_parsing import BoundedJsonParsing
from payql.wiring import Services
from resolvers.context import Caller
from schema.context import GraphQLContext


class PayQLGraphQL(BoundedJsonParsing, GraphQL[GraphQLContext, None]):
    def __init__(self, services: Callable[[], Services], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._services = services

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> GraphQLContext:
        client = request.client
        if isinstance(request, WebSocket):
            principal = None
        else:
            principal = self._services().tokens.principal_from_header(request.headers.get("authorization"))
        caller = Caller(
            principal=principal,
            request_id=request.headers.get("x-request-id") or uuid.uuid4().hex,
            source_ip=client.host if client else None,
            user_agent=request.headers.get("user-agent"),
        )
        services = self._services()
        return GraphQLContext(caller=caller, deps=services.deps, broker=services.broker)

    async def on_ws_connect(self, context: GraphQLContext) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        authorization = params.get("authorization") or params.get("Authorization")
        if authorization is None:
            return None
        principal = self._services().tokens.principal_from_header(str(authorization))
        if principal is None:
            raise ConnectionRejectionError({"message": "Invalid token."})
        context.caller = Caller(
            principal=principal,
            request_id=context.caller.request_id,
            source_ip=context.caller.source_ip,
            user_agent=context.caller.user_agent,
        )
        return None
