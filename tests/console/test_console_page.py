"""/console is served in development and production, with a strict CSP and no inline script."""

from __future__ import annotations

import re

import httpx
from pydantic import SecretStr
from starlette.applications import Starlette

from payql.app import create_app
from payql.settings import Settings
from tests.testkit import TEST_DATA_INDEX_KEY, TEST_DATA_KEY

CONSOLE_CSP_PARTS = (
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "connect-src 'self'",
    "frame-ancestors 'none'",
)


def assert_strict(response: httpx.Response) -> None:
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    for part in CONSOLE_CSP_PARTS:
        assert part in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp and "http" not in csp


async def test_the_console_page_has_a_strict_csp_and_no_inline_script(http: httpx.AsyncClient) -> None:
    page = await http.get("/console")
    assert_strict(page)
    assert page.headers["content-type"].startswith("text/html")
    # Every script is a file of this origin; none has a body.
    scripts = re.findall(r"<script[^>]*>.*?</script>", page.text, re.S)
    assert scripts and scripts == re.findall(r"<script[^>]*>\s*</script>", page.text)
    assert 'src="/console/static/app.js"' in page.text and "https://" not in page.text and " style=" not in page.text
    module = await http.get("/console/static/app.js")
    assert_strict(module)
    assert module.headers["content-type"].startswith("text/javascript")
    assert (await http.get("/console/static/../../payql/settings.py")).status_code == 404


def production_settings() -> Settings:
    return Settings(
        environment="production",
        redis_url="redis://127.0.0.1:1/0",
        database_url="postgres://payql@127.0.0.1:1/never-opened",
        jwt_secret=SecretStr("a-production-secret-of-more-than-32-characters"),
        gateways=["stripe"],
        gateway_settings={"stripe": {"secret_key": "sk_test_unused", "webhook_secrets": ["whsec_unused"]}},
        smtp_host="127.0.0.1",
        data_keys=SecretStr(TEST_DATA_KEY),
        data_index_key=SecretStr(TEST_DATA_INDEX_KEY),
    )


async def test_production_serves_the_console_too() -> None:
    app: Starlette = create_app(production_settings())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://payql.test") as client:
        assert_strict(await client.get("/console"))
        assert_strict(await client.get("/console/static/pages/order.js"))
