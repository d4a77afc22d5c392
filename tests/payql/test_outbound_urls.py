"""SSRF protection of outgoing webhooks: loopback, private, link-local (the metadata address),
multicast and unspecified addresses are refused, as literals and behind a hostname; every resolved
address must pass; only https in production; the request goes to the address that was checked."""

from __future__ import annotations

import pytest

from payql.outbound_urls import OutboundPolicy, RefusedUrl, check_url, pin

STRICT = OutboundPolicy(require_https=False, allow_private=False)
PRODUCTION = OutboundPolicy(require_https=True, allow_private=False)
PRIVATE_ALLOWED = OutboundPolicy(require_https=False, allow_private=True)


class resolving_to:
    """A DNS resolver that answers every host with the given addresses and remembers what it was asked."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.calls: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls.append(host)
        return self.addresses


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/hook", "loopback"),
        ("http://127.1.2.3:8080/hook", "loopback"),
        ("http://10.0.0.5/hook", "private"),
        ("http://192.168.1.1/hook", "private"),
        ("http://172.16.0.1/hook", "private"),
        ("http://[::1]/hook", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://224.0.0.1/hook", "multicast"),
        ("http://0.0.0.0/hook", "unspecified"),
        ("http://100.64.0.1/hook", "shared"),
        ("http://[::ffff:127.0.0.1]/hook", "loopback"),
        ("http://[fd00::1]/hook", "private"),
    ],
)
async def test_non_public_addresses_are_refused(url: str, reason: str) -> None:
    with pytest.raises(RefusedUrl, match=reason):
        check_url(url, STRICT)
    with pytest.raises(RefusedUrl, match=reason):
        await pin(url, STRICT, resolving_to("93.184.216.34"))


async def test_a_hostname_resolving_to_loopback_is_refused() -> None:
    with pytest.raises(RefusedUrl, match=r"127\.0\.0\.1 is loopback"):
        await pin("http://hooks.example/in", STRICT, resolving_to("127.0.0.1"))


async def test_localhost_through_the_real_resolver_is_refused() -> None:
    with pytest.raises(RefusedUrl, match="loopback"):
        await pin("http://localhost:8000/in", STRICT)


async def test_one_private_answer_among_public_ones_is_refused() -> None:
    with pytest.raises(RefusedUrl, match=r"10\.1\.2\.3 is private"):
        await pin("https://hooks.example/in", STRICT, resolving_to("93.184.216.34", "10.1.2.3"))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example/in", "must use https"),
        ("ftp://hooks.example/in", "must use https"),
        ("https://user:pw@hooks.example/in", "credentials"),
        ("https:///in", "no host"),
        ("https://hooks.example/in#frag", "fragment"),
        ("https://hooks.example:99999/in", "malformed"),
    ],
)
def test_production_takes_https_urls_without_credentials_only(url: str, message: str) -> None:
    with pytest.raises(RefusedUrl, match=message):
        check_url(url, PRODUCTION)


async def test_the_request_is_pinned_to_the_checked_address() -> None:
    resolver = resolving_to("93.184.216.34")
    target = await pin("https://hooks.example/in?x=1", PRODUCTION, resolver)
    assert target.url == "https://93.184.216.34:443/in?x=1"
    assert (target.host, target.sni_hostname, target.address) == ("hooks.example", "hooks.example", "93.184.216.34")
    assert resolver.calls == ["hooks.example"]
    ipv6 = await pin("http://hooks.example:8080/in", PRIVATE_ALLOWED, resolving_to("2001:db8::1"))
    assert (ipv6.url, ipv6.host, ipv6.sni_hostname) == ("http://[2001:db8::1]:8080/in", "hooks.example:8080", None)


async def test_private_addresses_pass_when_allowed() -> None:
    target = await pin("http://receiver.internal:9000/in", PRIVATE_ALLOWED, resolving_to("10.0.0.7"))
    assert target.url == "http://10.0.0.7:9000/in"


async def test_a_host_that_does_not_resolve_is_refused() -> None:
    async def fail(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(RefusedUrl, match="does not resolve"):
        await pin("https://nowhere.example/in", PRODUCTION, fail)
