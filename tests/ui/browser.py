"""Headless Chromium for the dashboard's tests: Debian's ``chromium`` driven through its ``chromedriver`` by
Selenium, and finding things on the page by their accessible name, as assistive technology does.

When the browser is missing the tests skip on a developer's machine, and fail under ``CI=true``
(``.ci/run`` installs it), so CI can never pass without having driven a browser.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

WAIT_S = 60.0  # generous: the machine is shared and may be slow
SCREENSHOTS = Path(
    os.environ.get("LLMSWITCH_UI_SCREENSHOTS") or Path(__file__).resolve().parents[2] / "build" / "ui-screenshots"
)


def _binaries() -> tuple[str, str] | None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (chromium, driver) if chromium and driver else None


def chromium() -> Iterator[Any]:
    """A headless Chromium session (skipped without the browser; a failure under CI=true)."""
    found = _binaries()
    if found is None:
        message = "Chromium and chromedriver are needed (apt-get install chromium chromium-driver)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; .ci/run installs them", pytrace=False)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1366,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to read CSP violations back
    driver = webdriver.Chrome(service=Service(executable_path=found[1]), options=options)
    driver.set_page_load_timeout(WAIT_S)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str, timeout: float = WAIT_S) -> Any:
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(driver, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out waiting for {what}; page text: {page_text(driver)[:2000]}") from None


def page_text(driver: Any) -> str:
    from selenium.webdriver.common.by import By

    text: str = driver.find_element(By.TAG_NAME, "body").text
    return text


def named(driver: Any, css: str, name: str, *, within: Any = None, timeout: float = WAIT_S) -> Any:
    """The visible element matching ``css`` whose accessible name is exactly ``name``."""
    from selenium.webdriver.common.by import By

    def find(d: Any) -> Any:
        for el in (within or d).find_elements(By.CSS_SELECTOR, css):
            if el.is_displayed() and el.accessible_name == name:
                return el
        return False

    return wait_for(driver, find, f"{css} named {name!r}", timeout)


def console_errors(driver: Any) -> list[str]:
    """The browser console's errors since the last call (a CSP violation is one)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def screenshot(driver: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    assert driver.save_screenshot(str(path)), f"no screenshot written to {path}"
    return path
