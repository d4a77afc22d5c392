"""Security headers on every HTTP response, and the Content-Security-Policy of each page we serve.

`SecurityHeadersMiddleware` is pure ASGI (it only edits `http.response.start`), so websockets and
streamed bodies pass through untouched. Every response gets `X-Content-Type-Options: nosniff`,
`Referrer-Policy: no-referrer` and, unless it says otherwise, `Cache-Control: no-store` and a CSP
that allows nothing (`STRICT_CSP`). A page that needs more sets its own CSP (GraphiQL in
development: `graphiql_csp`); this module never loosens a policy a response already carries.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# For JSON, text and our own pages without scripts: nothing may load, frame or submit anywhere.
STRICT_CSP: Final = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

_DEFAULT_HEADERS: Final[tuple[tuple[bytes, bytes], ...]] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy", STRICT_CSP.encode()),
)


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in _DEFAULT_HEADERS if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def inline_hash(source: str) -> str:
    """The CSP source expression allowing exactly this inline <script> or <style> body."""
    digest = hashlib.sha256(source.encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_SCRIPT_SRC = re.compile(r'<script[^>]*\ssrc="(https://[^"]+)"')
_STYLESHEET_HREF = re.compile(r'<link[^>]*\srel="stylesheet"[^>]*\shref="(https://[^"]+)"')


def graphiql_csp(page: str, websocket_origin: str) -> str:
    """A CSP for the GraphiQL page `page` (Strawberry's, loading GraphiQL from a CDN): exactly the
    script and stylesheet files the page names, its own inline script by hash, and connections to
    this server only. Built from the page itself, so a Strawberry upgrade that changes a file keeps
    working without loosening anything."""
    scripts = " ".join([*_SCRIPT_SRC.findall(page), *(inline_hash(body) for body in _INLINE_SCRIPT.findall(page))])
    stylesheets = " ".join(_STYLESHEET_HREF.findall(page))
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {scripts}",
            # GraphiQL's components add <style> elements at run time, so inline styles stay allowed;
            # its stylesheet imports its fonts from Google Fonts.
            f"style-src 'unsafe-inline' {stylesheets} https://fonts.googleapis.com",
            "font-src https://fonts.gstatic.com",
            "img-src data:",
            f"connect-src 'self' {websocket_origin}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
