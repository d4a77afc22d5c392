"""The browser fixtures and hooks of tests/browser.py."""

from tests.browser import browser, page, pytest_runtest_makereport, pytest_terminal_summary, snapshots

__all__ = ["browser", "page", "pytest_runtest_makereport", "pytest_terminal_summary", "snapshots"]
