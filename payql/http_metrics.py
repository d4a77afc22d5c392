"""Pure ASGI middleware counting HTTP answers by route template and status, and timing them.

The route label is the matched route's template (`/webhooks/{gateway}`), never the raw path: a
client cannot mint new series by requesting made-up URLs (those count as `unmatched`).
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from payql.metrics import HTTP_DURATION, HTTP_REQUESTS, labelled


class HttpMetricsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless an answer starts: the app raised

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            route = route_template(scope)
            method = scope["method"] if scope["method"] in ("GET", "POST", "OPTIONS", "HEAD") else "other"
            labelled(HTTP_REQUESTS, method, route, str(status)).inc()
            labelled(HTTP_DURATION, method, route).observe(time.perf_counter() - started)


def route_template(scope: Scope) -> str:
    """The template of the route Starlette matched (under its mount), or `unmatched`."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if not isinstance(path, str):
        return "unmatched"
    return f"{scope.get('root_path', '')}{path}"
