"""Debian's Chromium, driven through Debian's chromium-driver by Selenium: never a downloaded browser.

Missing on a developer's machine, the browser tests are skipped; in CI (``CI`` set) they fail, as the
nginx tests do, because `.ci/run` installs both packages.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.wait import WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--window-size=820,900", "--hide-scrollbars", "--force-device-scale-factor=1",
)  # fmt: skip


def require_chromium() -> None:
    missing = [
        path for path in (CHROMIUM, CHROMEDRIVER) if not Path(path).exists() and not shutil.which(path)
    ]
    if missing:
        reason = f"Debian's chromium and chromium-driver are needed ({', '.join(missing)} missing)"
        if os.environ.get("CI"):
            pytest.fail(f"browser tests cannot run in CI: {reason}")
        pytest.skip(reason)


def start_chromium(profile: Path) -> webdriver.Chrome:
    """A headless Chromium with a fresh profile; the dev CA's server certificate is accepted."""
    require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.accept_insecure_certs = True  # the dev CA is not in the profile's trust store
    service = Service(executable_path=CHROMEDRIVER)  # given: Selenium Manager downloads nothing
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    return driver


def wait_until_replaced(driver: webdriver.Chrome, old: WebElement, timeout: float = 20) -> None:
    """Until the page holding `old` (its ``html`` element, found before a click or a submit) has been
    replaced by the next one.

    Selenium's ``staleness_of`` asks the old element and expects "stale element"; while the new
    document is being committed, chromedriver sometimes answers instead with an inspector error,
    "Node with given id does not belong to the document", which says the same (seen failing a CI
    run). Any other error is raised.
    """

    def replaced(_: webdriver.Chrome) -> bool:
        try:
            old.is_enabled()
        except StaleElementReferenceException:
            return True
        except WebDriverException as exc:
            if "does not belong to the document" in (exc.msg or ""):
                return True
            raise
        return False

    WebDriverWait(driver, timeout).until(replaced)
