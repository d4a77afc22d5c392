"""What the console's browser tests share: README screenshots on request."""

from __future__ import annotations

from pathlib import Path

from playwright.async_api import Page


class Snapshots:
    """Screenshots for the README: saved to PAYQL_CONSOLE_SCREENSHOTS (e.g. docs/console) when set,
    by `make console-screenshots`; otherwise nothing is written."""

    def __init__(self, folder: str | None) -> None:
        self.folder = Path(folder) if folder else None

    async def take(self, page: Page, name: str) -> None:
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(self.folder / f"{name}.png"), full_page=True)
