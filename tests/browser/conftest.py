"""A real `certbound serve --dev` (main and mTLS listeners), a registered web app, its callback listener,
and a fresh headless Chromium per test."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from selenium import webdriver

from tests.browser.callback import Callback
from tests.browser.chromium import require_chromium, start_chromium
from tests.server.process.serverproc import RunningServer, free_port, start_server
from tests.server.wire.world import Registered, register_clients


@dataclass
class Site:
    server: RunningServer
    callback: Callback
    app: Registered

    @property
    def password(self) -> str:
        return (self.server.data_dir / "alice-password").read_text().strip()


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    require_chromium()
    base = tmp_path_factory.mktemp("browser")
    server = start_server(["--mtls-port", str(free_port())], base / "data")
    callback = Callback()
    try:
        app = register_clients(
            server,
            {
                "web": {
                    "client_name": "Browser Test App",
                    "token_endpoint_auth_method": "client_secret_basic",
                    "grant_types": ["authorization_code", "refresh_token"],
                    "redirect_uris": [callback.base + "/cb"],
                    "post_logout_redirect_uris": [callback.base + "/bye"],
                    "scope": "offline_access",
                }
            },
        )["web"]
        yield Site(server, callback, app)
    finally:
        callback.close()
        server.stop()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    driver = start_chromium(tmp_path / "profile")
    try:
        yield driver
    finally:
        driver.quit()
