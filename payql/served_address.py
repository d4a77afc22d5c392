"""Which public base URL a `payql serve` process advertises, given the address it listens on.

The public URL is where browsers and the sandbox reach this server (3-D Secure links, the sandbox's
own webhooks). Development derives it from the served address when PAYQL_PUBLIC_BASE_URL is not set,
so `payql serve --port 9000` advertises port 9000. When it is set and names this machine with a port
that is not the one served, nothing can reach the links it makes: say so at start-up. A public URL on
another host (a proxy, a domain) is normal in production and is never questioned here.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from payql.settings import Settings

_ANY_ADDRESS = frozenset({"", "0.0.0.0", "::"})  # noqa: S104  # recognized, never bound
_THIS_MACHINE = frozenset({"127.0.0.1", "localhost", "::1", "[::1]"})


@dataclass(frozen=True, slots=True)
class Advertised:
    public_base_url: str
    warning: str | None = None


def advertised_url(settings: Settings, host: str, port: int) -> Advertised:
    if "public_base_url" not in settings.model_fields_set and not settings.is_production:
        reachable = "127.0.0.1" if host in _ANY_ADDRESS else host
        shown = f"[{reachable}]" if ":" in reachable else reachable
        return Advertised(f"http://{shown}:{port}")
    url = urlsplit(settings.public_base_url)
    points_here = url.hostname in _THIS_MACHINE or url.hostname == host
    advertised_port = url.port or (443 if url.scheme == "https" else 80)
    if points_here and advertised_port != port:
        return Advertised(
            settings.public_base_url,
            f"PAYQL_PUBLIC_BASE_URL is {settings.public_base_url} but this server listens on port {port}: "
            "3-D Secure links and the sandbox's webhooks will point where nothing answers",
        )
    return Advertised(settings.public_base_url)
