"""The demo shop at /shop: HTML, CSS and ES modules from the repo's `shop/`, in development only.

It is the example a merchant copies: a shopper's browser talks to /graphql and, for the card number,
to the sandbox's tokenization endpoint only. Production never serves it (like the sandbox itself),
so `shop_routes` returns nothing there. The card number never passes through this module or /graphql.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from starlette.routing import BaseRoute

from payql.console import single_page_routes
from payql.settings import Settings

SHOP_DIR: Final = Path(__file__).resolve().parent.parent / "shop"


def shop_csp(public_base_url: str) -> str:
    """Like the console's, plus this server's websocket origin (live order status)."""
    parts = urlsplit(public_base_url)
    websocket = f"{'wss' if parts.scheme == 'https' else 'ws'}://{parts.netloc}"
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            f"connect-src 'self' {websocket}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def shop_routes(settings: Settings) -> list[BaseRoute]:
    if settings.is_production:
        return []
    return single_page_routes("/shop", SHOP_DIR, shop_csp(settings.public_base_url))
