"""The Strawberry ASGI view: builds the per-request context and authenticates websockets.

HTTP requests carry `Authorization: Bearer …`; websockets carry it in the `connection_init`
payload (browsers cannot set headers on a websocket). Cross-origin websocket handshakes are
checked against the same allow-list as CORS. The headers we keep (X-Request-Id, User-Agent) and
the client address never carry a card number on: a card-bearing request id is replaced by a fresh
one, and the user agent has the number redacted.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UnsetType

from domain.card_numbers import looks_like_card_number, redact_card_numbers
from payql.wiring import Services
from resolvers.context import Caller
from schema.context import GraphQLContext


class PayQLGraphQL(GraphQL[GraphQLContext, None]):
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
            request_id=_request_id(request.headers),
            source_ip=client.host if client and not looks_like_card_number(client.host) else None,
            user_agent=_user_agent(request.headers),
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


def _request_id(headers: Headers) -> str:
    """The client's X-Request-Id for tracing, unless it is missing or carries a card number."""
    given = headers.get("x-request-id")
    return given if given and not looks_like_card_number(given) else uuid.uuid4().hex


def _user_agent(headers: Headers) -> str | None:
    given = headers.get("user-agent")
    return redact_card_numbers(given) if given else None
