"""Headless Chromium driven by Selenium: Debian's chromium and driver, nothing downloaded."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from tests.support.services import unavailable

CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM = "/usr/bin/chromium"


def chrome():
    if not (Path(CHROMEDRIVER).exists() and Path(CHROMIUM).exists()):
        unavailable("chromium / chromium-driver are not installed (apt-get install them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1280,900",
        "--disable-extensions",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)


def artefacts(tmp_path: Path) -> Path:
    """``$SCRATCHD_TEST_ARTEFACTS`` (kept by CI) or the test's tmp dir."""
    root = Path(os.environ.get("SCRATCHD_TEST_ARTEFACTS") or tmp_path / "artefacts")
    root.mkdir(parents=True, exist_ok=True)
    return root


def console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def wait_for(predicate, timeout: float = 30.0, what: str = ""):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except Exception as exc:  # stale elements while the page re-renders
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what or predicate} ({last!r})")


def keep(path: Path, into: Path | None) -> None:
    if into is not None:
        into.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, into / path.name)
