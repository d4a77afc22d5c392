"""The Strawberry ASGI view: builds the per-request context and authenticates websockets.

HTTP requests carry `Authorization: Bearer …`; websockets carry it in the `connection_init`
payload (browsers cannot set headers on a websocket). Cross-origin websocket handshakes are
checked against the same allow-list as CORS. Before anything else, an anonymous request or one whose
token fails counts against its client IP's limit (429 with Retry-After when over); a websocket lives
no longer than its token (`ws_session`). The headers we keep (X-Request-Id, User-Agent) and the
client address never carry a card number on: a card-bearing request id is replaced by a fresh one
(`request_context`), and the user agent has the number redacted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.types.unset import UnsetType

from domain.card_numbers import looks_like_card_number, redact_card_numbers
from domain.log_context import bind_log_fields
from payql.graphql_request_parsing import BoundedJsonParsing
from payql.live_frames import LiveFramesHandler
from payql.rate_limit import Authentication
from payql.request_context import accepted_request_id, current_request_id
from payql.security_headers import graphiql_csp
from payql.wiring import Services
from resolvers.context import Caller
from schema.context import GraphQLContext

TOO_MANY_REQUESTS = "Too many requests from this address. Retry later."


class PayQLGraphQL(BoundedJsonParsing, GraphQL[GraphQLContext, None]):
    graphql_transport_ws_handler_class = LiveFramesHandler

    def __init__(self, services: Callable[[], Services], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = await self.refuse_over_client_limit(Request(scope, receive))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await super().__call__(scope, receive, send)

    async def refuse_over_client_limit(self, request: Request) -> Response | None:
        """429 with Retry-After when this client IP is over its limit of anonymous requests or of
        failed authentications; None to serve the request."""
        authorization = request.headers.get("authorization")
        wait = await self._services().ip_limits.wait_before(
            request.client.host if request.client else None, self._authentication(authorization)
        )
        if wait is None:
            return None
        return JSONResponse(
            {"errors": [{"message": TOO_MANY_REQUESTS, "extensions": {"code": "RATE_LIMITED"}}]},
            status_code=429,
            headers={"Retry-After": str(wait)},
        )

    def _authentication(self, authorization: str | None) -> Authentication:
        if authorization is None:
            return Authentication.NONE
        if self._services().tokens.principal_from_header(authorization) is None:
            return Authentication.FAILED
        return Authentication.VERIFIED

    async def render_graphql_ide(self, request: Request) -> Response:
        page = self.graphql_ide_html
        websocket_origin = f"{'wss' if request.url.scheme == 'https' else 'ws'}://{request.url.netloc}"
        return HTMLResponse(page, headers={"Content-Security-Policy": graphiql_csp(page, websocket_origin)})

    async def get_context(self, request: Request | WebSocket, response: Response | WebSocket) -> GraphQLContext:
        client = request.client
        if isinstance(request, WebSocket):
            principal = None
        else:
            principal = self._services().tokens.principal_from_header(request.headers.get("authorization"))
        # RequestIdMiddleware chose it (and answers with it); the same checks apply without it.
        request_id = current_request_id() or accepted_request_id(request.headers.get("x-request-id"))
        if principal is not None:
            bind_log_fields(principal=principal.actor_name)
        caller = Caller(
            principal=principal,
            request_id=request_id,
            source_ip=client.host if client and not looks_like_card_number(client.host) else None,
            user_agent=_user_agent(request.headers),
        )
        services = self._services()
        return GraphQLContext(
            caller=caller, deps=services.deps, broker=services.broker, live_streams=services.live_streams
        )

    async def on_ws_connect(self, context: GraphQLContext) -> UnsetType | dict[str, object] | None:
        params = context.connection_params or {}
        authorization = params.get("authorization") or params.get("Authorization")
        await self.refuse_websocket_over_client_limit(context, None if authorization is None else str(authorization))
        if authorization is None:
            return None
        principal = self._services().tokens.principal_from_header(str(authorization))
        if principal is None:
            raise ConnectionRejectionError({"message": "Invalid token."})
        bind_log_fields(principal=principal.actor_name)
        context.caller = Caller(
            principal=principal,
            request_id=context.caller.request_id,
            source_ip=context.caller.source_ip,
            user_agent=context.caller.user_agent,
        )
        return None

    async def refuse_websocket_over_client_limit(self, context: GraphQLContext, authorization: str | None) -> None:
        """A websocket's connection_init counts like an HTTP request against its client IP."""
        wait = await self._services().ip_limits.wait_before(
            context.caller.source_ip, self._authentication(authorization)
        )
        if wait is not None:
            raise ConnectionRejectionError({"message": TOO_MANY_REQUESTS})


def _user_agent(headers: Headers) -> str | None:
    given = headers.get("user-agent")
    return redact_card_numbers(given) if given else None
