"""The request id and the other identifiers in scope, for every log line written while handling one
request or job (context variables), and the X-Request-Id response header.

A client's X-Request-Id is kept only when it fits the audit trail's 64-character column, is
printable and carries no card number; otherwise a fresh one replaces it. Nothing here may log
or store a header it has not checked that way.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from contextvars import ContextVar

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.card_numbers import looks_like_card_number
from domain.log_context import bound_fields, end_scope, fresh_scope

# audit_records.request_id is a 64-character column.
MAX_REQUEST_ID_LENGTH = 64

_request_id: ContextVar[str | None] = ContextVar("payql_request_id", default=None)


def accepted_request_id(given: str | None) -> str:
    """The client's X-Request-Id, unless it is missing, too long for the audit trail's column, not
    printable, or carries a card number: then a fresh one."""
    if given and len(given) <= MAX_REQUEST_ID_LENGTH and given.isprintable() and not looks_like_card_number(given):
        return given
    # 128 random bits as 32 hex digits, as a UUID4's hex, for less than half its cost on every request.
    return secrets.token_hex(16)


def current_request_id() -> str | None:
    return _request_id.get()


def log_fields() -> Mapping[str, str]:
    """The identifiers bound in this context (principal, order, payment, webhook event, ...)."""
    fields = bound_fields()
    request_id = _request_id.get()
    if request_id is not None:
        fields["request_id"] = request_id
    return fields


class RequestIdMiddleware:
    """Pure ASGI: gives each HTTP request and websocket its request id for the log lines written
    while serving it, and answers every HTTP request with it in X-Request-Id."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        request_id = accepted_request_id(Headers(scope=scope).get("x-request-id"))
        id_token = _request_id.set(request_id)
        fields_token = fresh_scope()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Request-Id"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            end_scope(fields_token)
            _request_id.reset(id_token)
