"""Review 14: a session refreshed by several gateway processes at once (workers, or hosts sharing the
store) uses its refresh token once. Both IdPs rotate refresh tokens and certbound's revokes the whole
grant when one is used twice: two processes refreshing the same token would end the session.

Two real gateway processes share one data_dir (SQLite store and sealing key); a browser logs in
through the first on the ``fresh`` route (refreshed on every request), then the same session cookie
is sent to both processes at once, many times."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from certbound.store.schema import sessions
from certbound.store.sql import open_store
from tests.client.material import Material
from tests.gateway.echo import Echo
from tests.gateway.gatewayproc import RunningGateway, start_gateway
from tests.gateway.login_world import (
    Browser,
    LoginIdp,
    World,
    log_in_at_idp,
    start_browser,
    stored_session,
    world_fixture,
)
from tests.server.process.serverproc import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(material: Material, echo: Echo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from world_fixture(material, echo, tmp_path_factory.mktemp("gateway-refresh-workers"))


@pytest.fixture(scope="module")
def second(world: World, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningGateway]:
    """Another gateway process on the same store and key (the redirect_uris stay the first's)."""
    config = copy.deepcopy(world.config)
    config["listener"]["port"] = free_port()
    app = next(r for r in config["routes"] if r["name"] == "certbound-app")
    callback = f"https://127.0.0.1:{config['listener']['port']}/flood/cb"
    config["routes"].append({**app, "name": "flood", "paths": ["/flood"], "login_starts_per_second": 0.1,
                             "redirect_uri": callback})  # fmt: skip
    gateway = start_gateway(config, tmp_path_factory.mktemp("second-gateway"), ca_file=world.material.ca_file)
    try:
        yield gateway
    finally:
        gateway.stop()


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


def test_two_processes_refreshing_one_session_keep_it(
    world: World, second: RunningGateway, idp: LoginIdp, browser: Browser
) -> None:
    path = "fresh"
    browser.driver.get(f"{world.gateway.url}/{idp.name}/{path}/start")
    log_in_at_idp(browser, idp)
    cookie_name = f"__Host-cbgw-{idp.name}-{path}"
    value = browser.cookies()[cookie_name]["value"]
    headers = {"cookie": f"{cookie_name}={value}"}
    gateways = [world.gateway, second]
    clients = [g.client() for g in gateways for _ in range(3)]
    try:
        for round_ in range(6):

            def call(i: int, round_: int = round_) -> int:
                gateway = gateways[i % 2]
                url = f"{gateway.url}/{idp.name}/{path}/r{round_}-{i}"
                return clients[i].get(url, headers=headers, follow_redirects=False).status_code

            with ThreadPoolExecutor(len(clients)) as pool:
                statuses = list(pool.map(call, range(len(clients))))
            assert statuses == [200] * len(clients), (round_, statuses)
    finally:
        for client in clients:
            client.close()
    data = stored_session(world, None, f"{idp.name}-{path}", value)
    assert data is not None  # the session is still there
    with idp.oauth() as oauth:  # and its tokens are alive at the IdP: no refresh token was used twice
        assert oauth.introspect(data["access_token"]).data["active"] is True


def test_a_flood_of_requests_without_a_session_writes_a_bounded_number_of_logins(
    world: World, second: RunningGateway
) -> None:
    """Each GET without a session writes a pending login: past login_starts_per_second (a burst of
    ten seconds' worth: one at 0.1/s) the gateway answers 503 and writes nothing."""

    def pending() -> int:
        async def count() -> int:
            store = open_store(f"sqlite:///{Path(world.config['store']['data_dir']) / 'certbound.db'}")
            try:
                async with store.engine.connect() as conn:
                    query = select(func.count()).where(sessions.c.purpose == "gateway-login:flood")
                    return int(await conn.scalar(query) or 0)
            finally:
                await store.close()

        return asyncio.run(count())

    with second.client() as client:
        statuses = [
            client.get(f"{second.url}/flood/p{i}", follow_redirects=False).status_code for i in range(12)
        ]
    started = statuses.count(302)
    assert 1 <= started < 12, statuses
    assert set(statuses) == {302, 503}, statuses
    assert pending() == started  # the refused ones wrote nothing
    refused = second.events(lambda e: e.get("path", "").startswith("/flood/") and e["status"] == 503)
    assert refused
    assert {e["reason"] for e in refused} == {"session.login_busy"}


def test_a_session_of_one_route_does_not_work_on_another(world: World, browser: Browser) -> None:
    """One session cookie per route: route app's session, under its own cookie name or under route
    par's (same IdP, same store), does not let a request through on par."""
    idp = world.idps["certbound"]
    browser.driver.get(f"{world.gateway.url}/certbound/app/mine")
    log_in_at_idp(browser, idp)
    value = browser.cookies()["__Host-cbgw-certbound-app"]["value"]
    with world.gateway.client() as http:
        own = http.get(f"{world.gateway.url}/certbound/app/ok",
                       headers={"cookie": f"__Host-cbgw-certbound-app={value}"})  # fmt: skip
        assert own.status_code == 200
        for name in ("__Host-cbgw-certbound-app", "__Host-cbgw-certbound-par"):
            other = http.get(f"{world.gateway.url}/certbound/par/x", headers={"cookie": f"{name}={value}"},
                             follow_redirects=False)  # fmt: skip
            assert other.status_code == 302, (name, other.text)
            assert other.headers["location"].startswith(idp.issuer)  # sent to log in
