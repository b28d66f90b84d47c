"""Review 14: the identity provider going away after people logged in through the gateway. A session
whose access token must be refreshed while the IdP is down is a 503 (``idp.unavailable``), and the
session is kept (the IdP failing is not the IdP refusing); a logout then still ends the session and
clears its cookies, and the event says the revocation failed. The module stops its own IdP: it has a
world of its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.client.material import Material
from tests.gateway.echo import Echo
from tests.gateway.login_world import (
    Browser,
    World,
    log_in_at_idp,
    start_browser,
    stored_session,
    world_fixture,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(material: Material, echo: Echo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from world_fixture(material, echo, tmp_path_factory.mktemp("gateway-idp-away"))


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    found = start_browser(tmp_path / "profile")
    try:
        yield found
    finally:
        found.driver.quit()


def test_a_refresh_and_a_logout_while_the_idp_is_away(world: World, browser: Browser) -> None:
    idp = world.idps["oidc"]
    browser.driver.get(f"{world.gateway.url}/oidc/fresh/start")  # refreshed on every request
    log_in_at_idp(browser, idp)
    cookie_name = "__Host-cbgw-oidc-fresh"
    value = browser.cookies()[cookie_name]["value"]
    before = stored_session(world, None, "oidc-fresh", value)
    assert before is not None

    idp.stop()
    with world.gateway.client() as http:
        cookie = {"cookie": f"{cookie_name}={value}"}
        during = http.get(f"{world.gateway.url}/oidc/fresh/during", headers=cookie, follow_redirects=False)
        assert during.status_code == 503, during.text
        assert during.json()["error"] == "temporarily_unavailable"
        assert world.gateway.event_for("/oidc/fresh/during")["reason"] == "idp.unavailable"
        kept = stored_session(world, None, "oidc-fresh", value)
        assert kept is not None  # the session is kept, its tokens untouched
        assert kept["refresh_token"] == before["refresh_token"]

        out = http.post(f"{world.gateway.url}/oidc/fresh/logout", headers=cookie, follow_redirects=False)
    assert out.status_code < 500, out.text
    assert stored_session(world, None, "oidc-fresh", value) is None  # ended here all the same
    cleared = [c for c in out.headers.get_list("set-cookie") if c.startswith(f"{cookie_name}=")]
    assert cleared
    assert all("Max-Age=0" in c or "expires=" in c.lower() for c in cleared)
    event = world.gateway.event_for("/oidc/fresh/logout")
    assert "failed: refresh_token, access_token" in event["detail"]
