"""Fixtures for the browser tests: one Chromium for the session, a page bound to each agent."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from selenium import webdriver

from tests.conftest import Served
from tests.ui.browser import Browser, start_chromium, stop_chromium


@pytest.fixture(scope="session")
def chromium() -> Iterator[webdriver.Chrome]:
    """One headless Chromium for every UI test (starting one costs about a second)."""
    driver, profile = start_chromium()
    yield driver
    stop_chromium(driver, profile)


async def attach(driver: webdriver.Chrome, served: Served, name: str) -> AsyncIterator[Browser]:
    """A Browser pointed at one agent; leaves the page before the agent stops (ends its long polls).

    After the test, the console must hold no CSP violation and no uncaught exception.
    """
    browser = Browser(driver, served.base_url, name)
    await browser.run(driver.get, "about:blank")
    await browser.network()
    await browser.console()
    try:
        yield browser
        problems = [
            entry["message"]
            for entry in await browser.console()
            if "Content Security Policy" in entry["message"] or "Uncaught" in entry["message"]
        ]
        assert problems == [], "the page broke its CSP or threw"
    finally:
        await browser.run(driver.get, "about:blank")


@pytest.fixture
async def page(
    chromium: webdriver.Chrome, served: Served, request: pytest.FixtureRequest
) -> AsyncIterator[Browser]:
    """The shared browser pointed at the ``served`` agent (dev mode, SQLite log)."""
    async for browser in attach(chromium, served, request.node.name):
        yield browser
