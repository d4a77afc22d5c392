"""A headless Chromium from the OS packages, driven by Playwright, for the console's and the shop's
tests (their conftest files import these fixtures).

The browser runs for the session; each test gets a fresh context (so a fresh sessionStorage) and
a page. A failing test saves a screenshot of its page to the log folder and prints the path.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.console.kit import Snapshots

CHROMIUM = "/usr/bin/chromium"
# How long a page may take to show what a test waits for; a miss fails the test with a screenshot.
WAIT_MS = 20_000
# `expect` has a clock of its own (5 s by default), apart from the page's: the same bound for both,
# since both suites share two cores in CI.
expect.set_options(timeout=WAIT_MS)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        await launched.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


def log_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """PAYQL_TEST_LOG_DIR when CI sets it (kept as an artifact), else the pytest temp folder."""
    configured = os.environ.get("PAYQL_TEST_LOG_DIR")
    folder = Path(configured) if configured else tmp_path_factory.getbasetemp() / "console-screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
async def page(
    browser: Browser, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    opened = await context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    if request.node.stash.get(_FAILED, False):
        shot = log_folder(tmp_path_factory) / f"{request.node.name}.png"
        await opened.screenshot(path=str(shot), full_page=True)
        print(f"\nscreenshot of the failed console test: {shot}; page errors: {errors}")
    await context.close()
    assert not errors, f"the console raised in the browser: {errors}"


@pytest.fixture(scope="session")
def snapshots() -> Snapshots:
    return Snapshots(os.environ.get("PAYQL_CONSOLE_SCREENSHOTS"))
