"""Logging out through the gateway (``logout_uri_suffix``, ``logout_methods``, ``logout_revoke``), in
headless Chromium against both identity providers: the session is deleted from the store, its refresh
and access tokens are revoked at the IdP each with a request of its own over mTLS (the IdP's
introspection then says ``active: false``), every cookie the login set is cleared, and the browser
goes through the IdP's ``end_session_endpoint`` with ``id_token_hint`` and
``post_logout_redirect_uri``. A refresh the IdP refuses ends the session too.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.wait import WebDriverWait

from tests.client.material import Material
from tests.gateway.echo import Echo
from tests.gateway.login_world import (
    CLIENT_ID,
    Browser,
    LoginIdp,
    World,
    log_in_at_idp,
    query_of,
    start_browser,
    stored_session,
    world_fixture,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(material: Material, echo: Echo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from world_fixture(material, echo, tmp_path_factory.mktemp("gateway-logout"))


@pytest.fixture(params=["certbound", "oidc"])
def idp(request: pytest.FixtureRequest, world: World) -> LoginIdp:
    found: LoginIdp = world.idps[request.param]
    return found


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    found = start_browser(tmp_path / "profile")
    try:
        yield found
    finally:
        found.driver.quit()


def log_in(world: World, browser: Browser, idp: LoginIdp, route: str) -> None:
    browser.driver.get(f"{world.gateway.url}/{idp.name}/{route}/page")
    log_in_at_idp(browser, idp)
    assert browser.json()["target"] == f"/{idp.name}/{route}/page"


def test_logout_revokes_each_token_clears_the_cookies_and_ends_the_idp_session(
    world: World, idp: LoginIdp, browser: Browser
) -> None:
    log_in(world, browser, idp, "app")
    route = f"{idp.name}-app"
    tokens = stored_session(world, browser, route)
    assert tokens is not None
    access, refresh = tokens["access_token"], tokens["refresh_token"]
    assert idp.active(access)
    # the tokens live server-side, sealed: the database file does not hold them
    database = (Path(world.config["store"]["data_dir"]) / "certbound.db").read_bytes()
    assert access.encode() not in database
    assert refresh.encode() not in database
    revocations = len(idp.requests("revocation"))

    browser.post(f"{world.gateway.url}/{idp.name}/app/logout")
    end_session = [u for u in browser.requested() if "id_token_hint=" in u]
    assert end_session, browser.requested()
    sent = query_of(end_session[0])
    assert sent["id_token_hint"] == tokens["id_token"]
    assert sent["post_logout_redirect_uri"] == world.echo.url + "/bye"
    assert f"__Host-cbgw-{route}" not in browser.cookies()  # cleared by Set-Cookie on the logout answer

    # each token revoked with a request of its own, over mTLS with the gateway's certificate
    calls = idp.requests("revocation")[revocations:]
    assert len(calls) == 2
    assert {c["cert_x5t_s256"] for c in calls} == {world.material.gateway.thumbprint}
    assert {c["client_id"] for c in calls} == {CLIENT_ID}
    assert not idp.active(access)
    assert idp.refresh_refused(refresh)
    event = world.gateway.events(lambda e: e.get("path") == f"/{idp.name}/app/logout")[-1]
    assert (event["status"], event["reason"]) == (302, "ok")
    assert "refresh_token, access_token" in event["detail"]

    # the IdP's own logout page (certbound asks first; oidc-provider too), then back to the echo
    log_in_at_idp_logout(browser, world)
    browser.driver.get(f"{world.gateway.url}/{idp.name}/app/page")
    assert browser.driver.current_url.startswith(idp.issuer)  # no session any more: a new login


def log_in_at_idp_logout(browser: Browser, world: World) -> None:
    """Confirm the logout at the IdP's page, as the person would."""

    buttons = browser.driver.find_elements(By.CSS_SELECTOR, "form button")
    if buttons:
        buttons[0].click()
        # the click only starts the form's navigation: wait for it to land on post_logout_redirect_uri,
        # or a page opened next can be overtaken by it (seen on a loaded machine)
        WebDriverWait(browser.driver, 20).until(lambda d: d.current_url.startswith(world.echo.url + "/bye"))


def test_a_refused_refresh_ends_the_session(world: World, idp: LoginIdp, browser: Browser) -> None:
    log_in(world, browser, idp, "fresh")
    route = f"{idp.name}-fresh"
    tokens = stored_session(world, browser, route)
    assert tokens is not None
    cookie = browser.cookies()[f"__Host-cbgw-{route}"]["value"]
    with idp.oauth() as oauth:  # the IdP withdraws the refresh token
        oauth.revoke(tokens["refresh_token"], token_type_hint="refresh_token")
    browser.driver.get(f"{world.gateway.url}/{idp.name}/fresh/next")
    event = world.gateway.events(lambda e: e.get("path") == f"/{idp.name}/fresh/next")[0]
    assert (event["status"], event["reason"]) == (302, "session.login_required")  # sent to log in again
    assert "refresh" in event["detail"]
    # the old session is gone (the IdP may log the person straight back in: a new session then)
    assert stored_session(world, None, route, cookie) is None
