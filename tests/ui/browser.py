"""Headless Chromium for the UI tests: one Selenium session, driven from trio through a thread.

Chromium and chromedriver come from Debian (``/usr/bin/chromium``, ``/usr/bin/chromedriver``;
``scripts/test`` installs them). A missing browser fails the tests loudly: they never skip.
Selenium calls block, so tests make them through ``Browser.run`` (``trio.to_thread``) while the
agent keeps serving on the trio loop of the same process.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import trio
from selenium import webdriver
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,900",
)
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "ui"
WAIT_SECONDS = 15.0

T = TypeVar("T")

TEXT_OF = """
const e = document.querySelector(arguments[0]);
if (!e) return null;
return e.closest('[hidden]') ? '' : e.innerText.replace(/[ \\t\\u00a0]+/g, ' ').trim();
"""
"""The visible text of the first match ('' when hidden, null when absent), read atomically."""

TEXTS_OF = """
return [...document.querySelectorAll(arguments[0])].map(e => e.innerText.replace(/[ \\t\\u00a0]+/g, ' ').trim());
"""


def start_chromium() -> tuple[webdriver.Chrome, Path]:
    """A fresh headless Chromium with its own profile dir; fails (never skips) when it cannot start."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.fail(
            f"browser tests need Debian's chromium and chromium-driver, missing: {', '.join(missing)} "
            "(scripts/test installs them with apt-get install -y chromium chromium-driver)",
            pytrace=False,
        )
    profile = Path(tempfile.mkdtemp(prefix="allocsvc-ui-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=DriverService(str(CHROMEDRIVER)))
    return driver, profile


def stop_chromium(driver: webdriver.Chrome, profile: Path) -> None:
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


class Browser:
    """The shared Chromium session, pointed at one test's agent."""

    def __init__(self, driver: webdriver.Chrome, base_url: str, name: str) -> None:
        self.driver = driver
        self.base_url = base_url
        self.name = name
        self.shots = 0

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking Selenium call off the trio loop."""
        return await trio.to_thread.run_sync(fn, *args)

    async def open(self, path: str) -> None:
        await self.run(self.driver.get, self.base_url + path)

    async def wait_for(self, condition: Callable[[webdriver.Chrome], T], timeout: float = WAIT_SECONDS) -> T:
        """Wait (bounded) until ``condition(driver)`` is truthy; returns its value."""
        return await self.run(
            lambda: WebDriverWait(self.driver, timeout, poll_frequency=0.05).until(condition)
        )

    async def wait_text(
        self, css: str, predicate: Callable[[str], bool], timeout: float = WAIT_SECONDS
    ) -> str:
        """Wait until the element's visible text satisfies ``predicate``; returns that text."""

        def check(driver: webdriver.Chrome) -> tuple[str] | bool:
            text = driver.execute_script(TEXT_OF, css)
            return (text,) if text is not None and predicate(text) else False  # a tuple: "" is a result too

        try:
            result = await self.wait_for(check, timeout)
        except Exception:
            await self.screenshot("timeout")
            raise
        assert isinstance(result, tuple)
        return str(result[0])

    async def find(self, css: str) -> WebElement:
        return await self.run(self.driver.find_element, By.CSS_SELECTOR, css)

    async def find_all(self, css: str) -> list[WebElement]:
        return await self.run(self.driver.find_elements, By.CSS_SELECTOR, css)

    async def texts(self, css: str) -> list[str]:
        """The visible text of every match, read in one script (no stale elements)."""
        return list(await self.script(TEXTS_OF, css))

    async def click(self, css: str) -> None:
        element = await self.find(css)
        await self.run(element.click)

    async def type_into(self, css: str, text: str) -> None:
        element = await self.find(css)
        await self.run(element.clear)
        await self.run(element.send_keys, text)

    async def select(self, css: str, value: str) -> None:
        """Choose an option of a <select> by value (fires ``change``)."""
        await self.run(
            self.driver.execute_script,
            "const s = document.querySelector(arguments[0]); s.value = arguments[1];"
            " s.dispatchEvent(new Event('change'));",
            css,
            value,
        )

    async def confirm(self) -> None:
        """Accept the page's confirmation dialog."""
        await self.wait_for(lambda d: d.find_element(By.ID, "confirm").get_attribute("open") is not None)
        await self.click("#confirm-ok")

    async def script(self, source: str, *args: Any) -> Any:
        return await self.run(self.driver.execute_script, source, *args)

    async def screenshot(self, label: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.shots += 1
        path = ARTIFACTS / f"{self.name}-{self.shots:02d}-{label}.png"
        await self.run(self.driver.save_screenshot, str(path))
        return path

    async def network(self) -> list[dict[str, Any]]:
        """Network events since the last call: requests (``url``, ``headers``) and WebSocket opens."""
        entries = await self.run(self.driver.get_log, "performance")
        out: list[dict[str, Any]] = []
        for entry in entries:
            message = json.loads(entry["message"])["message"]
            params = message.get("params", {})
            if message["method"] == "Network.requestWillBeSent":
                out.append(
                    {"kind": "http", "url": params["request"]["url"], "headers": params["request"]["headers"]}
                )
            elif message["method"] == "Network.webSocketCreated":
                out.append({"kind": "ws", "url": params["url"], "headers": {}})
            elif message["method"] == "Network.webSocketWillSendHandshakeRequest":
                out.append({"kind": "ws-handshake", "url": "", "headers": params["request"]["headers"]})
        return out

    async def console(self) -> list[dict[str, Any]]:
        return await self.run(self.driver.get_log, "browser")
