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


class PageFiles(StaticFiles):
    """StaticFiles whose every answer carries the page's CSP."""

    def __init__(self, directory: Path, csp: str) -> None:
        super().__init__(directory=directory)
        self.csp = csp

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_csp(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["content-security-policy"] = self.csp
            await send(message)

        await super().__call__(scope, receive, with_csp)


def single_page_routes(prefix: str, folder: Path, csp: str) -> list[BaseRoute]:
    """`prefix` (the folder's index.html; the page routes by URL fragment) and `prefix`/static/*."""

    async def index(request: Request) -> Response:
        return FileResponse(folder / "index.html", headers={"content-security-policy": csp})

    return [
        Route(prefix, index),
        Route(f"{prefix}/", index),
        Mount(f"{prefix}/static", app=PageFiles(folder / "static", csp)),
    ]


def console_routes() -> list[BaseRoute]:
    """/console and its files, in every environment."""
    return single_page_routes("/console", CONSOLE_DIR, CONSOLE_CSP)
