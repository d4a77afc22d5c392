"""The browser fixtures of tests/browser.py."""

from tests.browser import browser, page, pytest_runtest_makereport, snapshots

__all__ = ["browser", "page", "pytest_runtest_makereport", "snapshots"]
