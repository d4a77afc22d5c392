"""`PathLane`: the HTTP requests under one path prefix are served by an ASGI app of their own, with
only the layers they need; every other request and every websocket goes on to the main app.

Never here: reading a request, or answering one itself.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send


class PathLane:
    def __init__(self, app: ASGIApp, prefix: str, lane: ASGIApp) -> None:
        self.app = app
        self.prefix = prefix
        self.lane = lane

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].removeprefix(scope.get("root_path", "")).startswith(self.prefix):
            await self.lane(scope, receive, send)
        else:
            await self.app(scope, receive, send)
