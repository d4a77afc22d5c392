"""Every HTTP answer carries nosniff, no-store and a CSP; GraphiQL's CSP allows exactly its own
files and inline script; the sandbox's pages get a strict CSP; websockets are unaffected."""

from __future__ import annotations

import base64
import hashlib
import re

import httpx

from payql.security_headers import STRICT_CSP
from tests.testkit import CHECKOUT, Shopper, checkout_input, make_price
from tests.wsclient import graphql_ws


def directives(policy: str) -> dict[str, list[str]]:
    parsed: dict[str, list[str]] = {}
    for directive in policy.split(";"):
        name, *sources = directive.split()
        parsed[name] = sources
    return parsed


def sha256_source(text: str) -> str:
    return f"'sha256-{base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()}'"


async def test_api_answers_are_not_sniffed_cached_or_framed(http: httpx.AsyncClient) -> None:
    for answer in (
        await http.post("/graphql", json={"query": "{ products { id } }"}),
        await http.get("/healthz"),
        await http.post("/graphql", content=b"{not json", headers={"content-type": "application/json"}),
        await http.post("/webhooks/sandbox", content=b"{}"),
    ):
        assert answer.headers["x-content-type-options"] == "nosniff", answer.url
        assert answer.headers["cache-control"] == "no-store", answer.url
        assert answer.headers["content-security-policy"] == STRICT_CSP, answer.url


async def test_graphiql_may_load_exactly_what_its_page_names(http: httpx.AsyncClient) -> None:
    page = await http.get("/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200 and "graphiql" in page.text.lower()
    policy = directives(page.headers["content-security-policy"])
    scripts = re.findall(r'<script[^>]*\ssrc="([^"]+)"', page.text)
    inline = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    assert scripts and inline
    assert sorted(policy["script-src"]) == sorted([*scripts, *(sha256_source(body) for body in inline)])
    for stylesheet in re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"', page.text):
        assert stylesheet in policy["style-src"]
    assert policy["default-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]
    ws_origin = str(http.base_url).rstrip("/").replace("http://", "ws://")
    assert policy["connect-src"] == ["'self'", ws_origin]
    assert "'unsafe-eval'" not in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"


async def test_the_sandbox_authentication_page_has_a_strict_policy(shopper: Shopper, http: httpx.AsyncClient) -> None:
    price = await make_price(1200)
    started = (await shopper.data(CHECKOUT, {"input": checkout_input(price, "pm_card_authenticationRequired")}))[
        "checkout"
    ]
    page = await http.get(started["nextAction"]["redirectUrl"])
    assert page.status_code == 200 and "<form" in page.text
    header = page.headers["content-security-policy"]
    policy = directives(header)
    styles = re.findall(r"<style>(.*?)</style>", page.text, re.DOTALL)
    assert policy["default-src"] == ["'none'"]
    assert policy["style-src"] == [sha256_source(style) for style in styles]
    assert policy["form-action"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"]
    assert "unsafe-inline" not in header and "script-src" not in header
    assert " style=" not in page.text  # an inline style attribute would need 'unsafe-inline'
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["cache-control"] == "no-store"


async def test_websockets_pass_through_the_middleware(server: str, shopper: Shopper) -> None:
    async with graphql_ws(server, shopper.token) as ws:
        messages = [
            m async for m in ws.subscribe("subscription($id: ID!) { orderStatus(orderId: $id) { id } }", {"id": "x"})
        ]
    assert messages[0]["type"] in ("next", "error")
