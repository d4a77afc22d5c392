"""The staff console's static files at /console: HTML, CSS and ES modules from the repo's `console/`.

The console is a client of the public GraphQL API only; this module serves files and nothing else.
Its pages carry their own CSP: scripts, styles and connections from this origin only, never an
inline script, never a CDN. No token ever reaches this module: the browser keeps it in
sessionStorage and sends it to /graphql, and sign-in links carry it in the URL fragment, which
browsers never send to a server (so it is never in an access log).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Message, Receive, Scope, Send

CONSOLE_DIR: Final = Path(__file__).resolve().parent.parent / "console"

CONSOLE_CSP: Final = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "form-action 'none'",
    ]
)


class _ConsoleFiles(StaticFiles):
    """StaticFiles whose every answer carries the console's CSP."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_csp(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["content-security-policy"] = CONSOLE_CSP
            await send(message)

        await super().__call__(scope, receive, with_csp)


async def _index(request: Request) -> Response:
    return FileResponse(CONSOLE_DIR / "index.html", headers={"content-security-policy": CONSOLE_CSP})


def console_routes() -> list[BaseRoute]:
    """/console (the single page; it routes by URL fragment) and /console/static/* (its files)."""
    return [
        Route("/console", _index),
        Route("/console/", _index),
        Mount("/console/static", app=_ConsoleFiles(directory=CONSOLE_DIR / "static")),
    ]
