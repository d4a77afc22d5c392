"""A headless Chromium from the OS packages, driven by Playwright, for the console's and the shop's
tests (their conftest files import these fixtures).

The browser runs for the session; each test gets a fresh context (so a fresh sessionStorage) and
a page. A failing test leaves its artifacts in `ARTIFACTS` (git-ignored; CI keeps the folder), named
after the test: a full-page screenshot (`<test>.png`) and the page's console log (`<test>.log`); the
run's summary lists them. PAYQL_TEST_LOG_DIR puts them elsewhere.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Generator
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright, expect

from tests.console.kit import Snapshots

CHROMIUM = "/usr/bin/chromium"
# Inside the repository and git-ignored (.gitignore), so a CI run can upload it as it is.
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "browser"
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
_SAVED = pytest.StashKey[list[Path]]()


def artifacts_folder() -> Path:
    configured = os.environ.get("PAYQL_TEST_LOG_DIR")
    folder = Path(configured) if configured else ARTIFACTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def artifact_name(node_id: str) -> str:
    """A file name from the test's id: `tests/shop/test_x.py::test_y[a]` -> `tests.shop.test_x.py--test_y-a-`."""
    return re.sub(r"[^A-Za-z0-9_.-]", "-", node_id.replace("/", ".").replace("::", "--"))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    # Both suites' conftest files register this hook: the first call prints the list and empties it.
    saved, config.stash[_SAVED] = config.stash.get(_SAVED, []), []
    if saved:
        terminalreporter.section("browser artifacts of failed tests")
        for path in saved:
            terminalreporter.write_line(str(path))


@pytest.fixture
async def page(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(WAIT_MS)
    opened = await context.new_page()
    errors: list[str] = []
    console: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    opened.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    opened.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    yield opened
    if request.node.stash.get(_FAILED, False):
        base = artifacts_folder() / artifact_name(request.node.nodeid)
        shot, log = base.with_name(base.name + ".png"), base.with_name(base.name + ".log")
        await opened.screenshot(path=str(shot), full_page=True)
        log.write_text("".join(f"{line}\n" for line in console), encoding="utf-8")
        request.config.stash.setdefault(_SAVED, []).extend([shot, log])
    await context.close()
    assert not errors, f"the page raised in the browser: {errors}"


@pytest.fixture(scope="session")
def snapshots() -> Snapshots:
    return Snapshots(os.environ.get("PAYQL_CONSOLE_SCREENSHOTS"))
