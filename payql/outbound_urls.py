"""Deciding whether PayQL may send a request to a merchant's URL, and pinning where it goes (SSRF).

A webhook URL is typed in by staff, so it must not become a way to reach what only the server can
reach: the loopback interface, the private network, the cloud's metadata address (169.254.169.254).
A URL is accepted when its scheme is https (http too outside production), it has no credentials, and
every address its host resolves to is public, unless PAYQL_MERCHANT_WEBHOOKS_ALLOW_PRIVATE says the
merchant's systems live on a private network.

The host is resolved once, here, and the request is then sent to that very address (the Host header
and the TLS server name stay the hostname): a DNS answer that changes between the check and the
connection (DNS rebinding) cannot move the request elsewhere. Redirects are never followed by the
caller. Never here: connecting to an address that was not checked.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]

MAX_URL_LENGTH = 2048
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")  # carrier-grade NAT: not public either


class RefusedUrl(ValueError):
    """The URL or an address it resolves to may not be called; the message says why."""


@dataclass(frozen=True, slots=True)
class OutboundPolicy:
    require_https: bool
    allow_private: bool


@dataclass(frozen=True, slots=True)
class PinnedTarget:
    """Where a request goes: `url` names the checked address; `host` and `sni_hostname` the original host."""

    url: str
    host: str  # the Host header: the original host and port
    sni_hostname: str | None  # the name TLS verifies the certificate against (https only)
    address: str


def forbidden_reason(address: IPAddress) -> str | None:
    """Why an address is not public (loopback, private, …), or None for a public one."""
    mapped = address.ipv4_mapped if isinstance(address, ipaddress.IPv6Address) else None
    if mapped is not None:
        return forbidden_reason(mapped)
    checks = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("shared", isinstance(address, ipaddress.IPv4Address) and address in _SHARED_ADDRESS_SPACE),
        ("not global", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


def check_url(url: str, policy: OutboundPolicy) -> None:
    """Refuse a URL by its text alone (scheme, credentials, an IP literal that is not public)."""
    _parts(url, policy)


def _parts(url: str, policy: OutboundPolicy) -> tuple[str, str, int]:
    if len(url) > MAX_URL_LENGTH:
        raise RefusedUrl(f"the URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise RefusedUrl(f"the URL is malformed: {error}") from None
    allowed = ("https",) if policy.require_https else ("https", "http")
    if parts.scheme not in allowed:
        raise RefusedUrl(f"the URL must use {' or '.join(allowed)}")
    if parts.username is not None or parts.password is not None:
        raise RefusedUrl("the URL must not hold credentials")
    host = parts.hostname
    if not host:
        raise RefusedUrl("the URL has no host")
    if parts.fragment:
        raise RefusedUrl("the URL must not have a fragment")
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        _check_address(literal, policy)
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def _check_address(address: IPAddress, policy: OutboundPolicy) -> None:
    reason = forbidden_reason(address)
    if reason is not None and not policy.allow_private:
        raise RefusedUrl(f"the address {address} is {reason}; only public addresses can receive webhooks")


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def pin(url: str, policy: OutboundPolicy, resolver: Resolver = system_resolver) -> PinnedTarget:
    """Check the URL, resolve its host once, check every address, and name the one to connect to.

    Every address must pass, not just one: otherwise a host answering with a public and a private
    address could be reached on the private one by a later connection attempt.
    """
    scheme, host, port = _parts(url, policy)
    try:
        found = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            answers = await resolver(host, port)
        except OSError as error:
            raise RefusedUrl(f"the host {host} does not resolve: {error}") from None
        found = [ipaddress.ip_address(answer.split("%", 1)[0]) for answer in answers]
    if not found:
        raise RefusedUrl(f"the host {host} does not resolve")
    for address in found:
        _check_address(address, policy)
    address = found[0]
    netloc_host = f"[{address}]" if address.version == 6 else str(address)
    parts = urlsplit(url)
    pinned = urlunsplit((scheme, f"{netloc_host}:{port}", parts.path or "/", parts.query, ""))
    bracketed = f"[{host}]" if ":" in host else host
    host_header = bracketed if port == (443 if scheme == "https" else 80) else f"{bracketed}:{port}"
    return PinnedTarget(
        url=pinned, host=host_header, sni_hostname=host if scheme == "https" else None, address=str(address)
    )
