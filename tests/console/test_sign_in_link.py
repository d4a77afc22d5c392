"""`payql token --admin --link` prints a link that signs a staff member in to the console, with the
token in the fragment only (never sent to the server, so never in its access log)."""

from __future__ import annotations

from urllib.parse import urlsplit

from playwright.async_api import Page, expect

from payql.settings import Settings
from tests.payql.test_cli import cli_env
from tests.processes import cli


async def test_the_cli_link_signs_in_and_keeps_the_token_out_of_the_url(
    page: Page, server: str, server_settings: Settings
) -> None:
    env = cli_env(server_settings) | {"PAYQL_PUBLIC_BASE_URL": server}
    link = (await cli(env, "token", "--sub", "support-1", "--admin", "--link")).stdout.strip()
    parts = urlsplit(link)
    assert (parts.path, parts.query) == ("/console", "") and parts.fragment.startswith("token=")

    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto(link)
    await expect(page.get_by_role("heading", level=1)).to_have_text("Orders")
    assert urlsplit(page.url).fragment == "/orders"
    assert requested and not [url for url in requested if "token=" in url]
