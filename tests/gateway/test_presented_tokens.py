"""``userinfo`` and ``refresh_token`` as auth methods, against both IdPs: a person's tokens (from a
login through the gateway in headless Chromium, read from the gateway's store) are presented by a
caller; the gateway checks the access token at the IdP's userinfo endpoint, or refreshes the refresh
token, over mTLS with its own certificate, and caches what it learnt.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from tests.client.material import Material
from tests.gateway.echo import Echo
from tests.gateway.login_world import (
    Browser,
    LoginIdp,
    World,
    log_in_at_idp,
    start_browser,
    stored_session,
    world_fixture,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(material: Material, echo: Echo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from world_fixture(material, echo, tmp_path_factory.mktemp("gateway-presented"))


@pytest.fixture(params=["certbound", "oidc"])
def idp(request: pytest.FixtureRequest, world: World) -> LoginIdp:
    found: LoginIdp = world.idps[request.param]
    return found


@pytest.fixture
def tokens(world: World, idp: LoginIdp, tmp_path: Path) -> dict[str, Any]:
    """A person's access and refresh tokens, obtained by logging in through the gateway."""
    browser: Browser = start_browser(tmp_path / "profile")
    try:
        browser.driver.get(f"{world.gateway.url}/{idp.name}/app/page")
        log_in_at_idp(browser, idp)
        found = stored_session(world, browser, f"{idp.name}-app")
    finally:
        browser.driver.quit()
    assert found is not None
    return found


def test_userinfo_validates_the_token_at_the_idp_and_caches(
    world: World, idp: LoginIdp, tokens: dict[str, Any]
) -> None:
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    with world.gateway.client() as http:
        first = http.get(f"{world.gateway.url}/{idp.name}/ui/one", headers=bearer)
        second = http.get(f"{world.gateway.url}/{idp.name}/ui/two", headers=bearer)
        bogus = http.get(
            f"{world.gateway.url}/{idp.name}/ui/three", headers={"Authorization": "Bearer not-a-token"}
        )
    assert first.status_code == 200, first.text
    seen = {n.lower(): v for n, v in first.json()["headers"]}
    assert seen["x-subject"] == tokens["claims"]["sub"]
    assert seen["authorization"] == bearer["Authorization"]
    assert second.status_code == 200
    assert (bogus.status_code, world.gateway.event_for("/ui/three")["reason"]) == (401, "userinfo.refused")
    assert bogus.headers["www-authenticate"].startswith('Bearer realm="')
    events = [world.gateway.event_for(f"/{idp.name}/ui/one"), world.gateway.event_for(f"/{idp.name}/ui/two")]
    assert [(e["token_source"], e["cached"]) for e in events] == [("userinfo", False), ("userinfo", True)]


def test_refresh_token_gets_an_access_token_over_mtls(
    world: World, idp: LoginIdp, tokens: dict[str, Any]
) -> None:
    with world.gateway.client() as http:
        first = http.get(
            f"{world.gateway.url}/{idp.name}/rt/one", headers={"X-Refresh-Token": tokens["refresh_token"]}
        )
        second = http.get(
            f"{world.gateway.url}/{idp.name}/rt/two", headers={"X-Refresh-Token": tokens["refresh_token"]}
        )
        bogus = http.get(
            f"{world.gateway.url}/{idp.name}/rt/three", headers={"X-Refresh-Token": "not-a-token"}
        )
        form = http.post(f"{world.gateway.url}/{idp.name}/rt/form",
                         content=urlencode({"refresh_token": tokens["refresh_token"], "keep": "1"}),
                         headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    # review 14: the rotated refresh token comes back to the caller (the one it sent is spent), the
    # same to a request that got the cached access token
    rotated = first.headers.get("x-refresh-token")
    if idp.name == "certbound":  # certbound's IdP rotates on every use
        assert rotated
        assert rotated != tokens["refresh_token"]
    assert second.headers.get("x-refresh-token") == rotated
    assert form.headers.get("x-refresh-token") == rotated
    if rotated is not None:
        assert not idp.refresh_refused(rotated)  # the IdP honours it
    assert form.status_code == 200, form.text
    assert form.json()["body_length"] == len(b"keep=1")  # the refresh token stays at the gateway
    assert first.status_code == 200, first.text
    seen = {n.lower(): v for n, v in first.json()["headers"]}
    assert "x-refresh-token" not in seen  # review 14: the caller's refresh token stays at the gateway
    new_token = seen["authorization"].removeprefix("Bearer ")
    assert new_token != tokens["access_token"]
    assert {n.lower(): v for n, v in second.json()["headers"]}["authorization"] == seen[
        "authorization"
    ]  # cached
    assert (bogus.status_code, world.gateway.event_for(f"/{idp.name}/rt/three")["reason"]) == (
        401,
        "credentials.refused",
    )
    with idp.oauth() as oauth:
        answer = oauth.introspect(new_token).data
    assert answer["active"] is True
    assert answer["cnf"]["x5t#S256"] == world.material.gateway.thumbprint
