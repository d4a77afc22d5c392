"""A failing browser test leaves a full-page screenshot and the page's console log, named after the
test, in a git-ignored folder inside the repository, and the run's summary says where.

The failing test is a throwaway file in a temporary folder, run by pytest in a subprocess with the
same fixtures and hooks (tests/browser.py) as the console's and the shop's suites.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.browser import ARTIFACTS, artifact_name

REPOSITORY = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

CONFTEST = """from tests.browser import browser, page, pytest_runtest_makereport, pytest_terminal_summary

__all__ = ["browser", "page", "pytest_runtest_makereport", "pytest_terminal_summary"]
"""
FAILING = """from playwright.async_api import Page


async def test_a_page_that_breaks(page: Page) -> None:
    await page.set_content("<h1>Checkout</h1>")
    await page.evaluate("console.warn('the total did not load')")
    assert await page.text_content("h1") == "Paid"
"""


def test_a_failing_browser_test_leaves_its_screenshot_and_console_log(tmp_path: Path) -> None:
    suite, artifacts = tmp_path / "suite", tmp_path / "artifacts"
    suite.mkdir()
    (suite / "conftest.py").write_text(CONFTEST)
    (suite / "test_broken_page.py").write_text(FAILING)
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(REPOSITORY / "pyproject.toml"), "--rootdir", str(suite),
         "-p", "no:cacheprovider", "-q", str(suite / "test_broken_page.py")],
        cwd=suite, capture_output=True, text=True, timeout=240,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY), "PAYQL_TEST_LOG_DIR": str(artifacts)},
    )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    name = artifact_name("test_broken_page.py::test_a_page_that_breaks")
    shot, log = artifacts / f"{name}.png", artifacts / f"{name}.log"
    assert shot.read_bytes().startswith(PNG_SIGNATURE)
    assert "warning: the total did not load" in log.read_text()
    assert "browser artifacts of failed tests" in run.stdout
    assert str(shot) in run.stdout and str(log) in run.stdout


def test_the_artifacts_folder_is_in_the_repository_and_ignored_by_git() -> None:
    assert ARTIFACTS.is_relative_to(REPOSITORY)
    ignored = subprocess.run(["git", "check-ignore", "-q", str(ARTIFACTS / "x.png")], cwd=REPOSITORY, check=False)
    assert ignored.returncode == 0
