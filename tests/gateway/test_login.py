"""People log in through the gateway (``authorization_code`` + ``session``), in Debian's headless
Chromium, against both identity providers: certbound's own login page and oidc-provider's development
login form. The code exchange, the refresh and the revocations reach the IdP over mTLS with the
gateway's certificate and ``client_id`` (the IdP's own log says so); the session lives in the store
and survives a gateway restart; a replayed, forged or foreign state, a tampered nonce and another
issuer's ID token are refused and leave no session.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait
from sqlalchemy import text
from typer.testing import CliRunner

from certbound.cli.main import app
from certbound.gateway.config import IdpSettings
from certbound.gateway.idp import IdentityProvider
from certbound.jose.errors import JwtError
from certbound.jose.keyring import KeyManager
from certbound.sealing import Sealer, load_kek, load_or_create_kek
from certbound.sessions import SessionCookie
from certbound.sessions.redis_store import RedisSessionStore
from certbound.store.sql import open_store
from tests.browser.chromium import wait_until_replaced
from tests.client.material import Material
from tests.gateway.echo import Echo
from tests.gateway.idps import wait_until
from tests.gateway.login_world import (
    CLIENT_ID,
    REDIS_URL,
    Browser,
    LoginIdp,
    World,
    log_in_at_idp,
    query_of,
    start_browser,
    stored_session,
    world_fixture,
)
from tests.pg_helpers import require_postgres, throwaway_database
from tests.server.process.serverproc import CERTBOUND, RunningServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(material: Material, echo: Echo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from world_fixture(material, echo, tmp_path_factory.mktemp("gateway-login"))


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


def log_in(world: World, browser: Browser, idp: LoginIdp, route: str = "app", path: str = "page?x=1") -> str:
    """Go to a page of the route, log in at the IdP, and come back to it; the callback URL used."""
    browser.driver.get(f"{world.gateway.url}/{idp.name}/{route}/{path}")
    assert browser.driver.current_url.startswith(idp.issuer), browser.driver.current_url
    log_in_at_idp(browser, idp)
    callbacks = browser.callbacks(f"{world.gateway.url}/{idp.name}/{route}/callback")
    assert len(callbacks) == 1, callbacks
    return callbacks[0]


def authorization(browser: Browser) -> str:
    """The Authorization header the upstream received, as the echo shows it."""
    return str({n.lower(): v for n, v in browser.json()["headers"]}["authorization"])


def test_a_person_logs_in_and_the_upstream_gets_the_token(
    world: World, idp: LoginIdp, browser: Browser
) -> None:
    callback = log_in(world, browser, idp)
    # back on the page first asked for, answered by the upstream
    assert browser.driver.current_url == f"{world.gateway.url}/{idp.name}/app/page?x=1"
    seen = browser.json()
    assert seen["target"] == f"/{idp.name}/app/page?x=1"
    headers = {name.lower(): value for name, value in seen["headers"]}
    assert headers["authorization"].startswith("Bearer ")
    assert headers["x-client-id"] == CLIENT_ID
    assert "cbgw" not in headers.get("cookie", "")  # the gateway's cookies stay with the gateway
    access_token = headers["authorization"].removeprefix("Bearer ")
    with idp.oauth() as oauth:  # the token is the gateway's, bound to the gateway's certificate
        answer = oauth.introspect(access_token).data
    assert answer["active"] is True
    assert answer["client_id"] == CLIENT_ID
    assert answer["cnf"]["x5t#S256"] == world.material.gateway.thumbprint
    assert headers["x-subject"] == answer["sub"]  # who the ID token says logged in

    # state and nonce: 256 random bits each; PKCE S256
    authorize = [u for u in browser.requested() if "code_challenge=" in u]
    assert authorize, browser.requested()
    sent = query_of(authorize[0])
    assert sent["code_challenge_method"] == "S256"
    assert len(sent["state"]) >= 43
    assert len(sent["nonce"]) >= 43
    assert query_of(callback)["state"] == sent["state"]

    # the code exchange went over mTLS with the gateway's certificate and client_id
    exchanges = [r for r in idp.requests("token") if r.get("client_id") == CLIENT_ID]
    assert exchanges, idp.requests("token")
    assert exchanges[-1]["cert_x5t_s256"] == world.material.gateway.thumbprint

    # the session cookie: sealed, HttpOnly, Secure, SameSite=Lax; the login cookie is gone
    cookies = browser.cookies()
    session = cookies[f"__Host-cbgw-{idp.name}-app"]
    assert (session["httpOnly"], session["secure"], session["sameSite"]) == (True, True, "Lax")
    assert session["value"].startswith("v1.")
    assert f"__Host-cbgw-{idp.name}-app-login" not in cookies

    event = world.gateway.event_for(f"/{idp.name}/app/page")
    assert (event["outcome"], event["reason"], event["token_source"], event["sub"]) == (
        "allowed", "ok", "session", answer["sub"])  # fmt: skip
    explained = CliRunner().invoke(app, ["explain", "--event", "-"], input=json.dumps(event) + "\n").stdout
    assert "held by the gateway in the browser's session" in explained


def test_the_session_survives_a_gateway_restart(world: World, idp: LoginIdp, browser: Browser) -> None:
    log_in(world, browser, idp)
    world.restart_gateway()
    browser.driver.get(f"{world.gateway.url}/{idp.name}/app/after-restart")
    assert browser.json()["target"] == f"/{idp.name}/app/after-restart"  # no login: the store kept it


def test_sessions_in_redis_survive_a_gateway_restart(world: World, idp: LoginIdp, browser: Browser) -> None:
    log_in(world, browser, idp, route="red")
    session = browser.cookies()[f"__Host-cbgw-{idp.name}-red"]
    assert stored_session(world, browser, f"{idp.name}-red") is None  # not in the SQL store
    sealer = Sealer(load_kek(Path(world.config["store"]["data_dir"]) / "session.key"))
    ticket = SessionCookie(sealer, name=f"cbgw-{idp.name}-red", purpose=f"gateway:{idp.name}-red").open(
        session["value"]
    )

    async def in_redis() -> bool:
        store = RedisSessionStore.from_url(REDIS_URL, sealer)
        try:
            return await store.get(ticket.session_id, purpose=f"gateway:{idp.name}-red") is not None
        finally:
            await store.aclose()

    assert asyncio.run(in_redis())
    world.restart_gateway()
    browser.driver.get(f"{world.gateway.url}/{idp.name}/red/after-restart")
    assert browser.json()["target"] == f"/{idp.name}/red/after-restart"


def test_a_replayed_callback_is_refused_and_the_session_kept(
    world: World, idp: LoginIdp, browser: Browser
) -> None:
    callback = log_in(world, browser, idp)
    exchanges = len(idp.requests("token"))
    browser.driver.get(callback)
    assert browser.json()["error"] == "invalid_request"
    replays = world.gateway.events(lambda e: e.get("path") == urlsplit(callback).path and e["status"] == 400)
    assert replays[-1]["reason"] == "callback.no_login"  # the login cookie went with the first callback
    # the code never reached the IdP again, and the first session still works
    assert len(idp.requests("token")) == exchanges
    browser.driver.get(f"{world.gateway.url}/{idp.name}/app/still")
    assert browser.json()["target"] == f"/{idp.name}/app/still"


def test_a_callback_in_another_browser_is_refused(
    world: World, idp: LoginIdp, browser: Browser, tmp_path: Path
) -> None:
    other = start_browser(tmp_path / "other")
    try:
        # the other browser began a login of its own, then is handed the first one's callback
        other.driver.get(f"{world.gateway.url}/{idp.name}/app/x")
        browser.driver.get(f"{world.gateway.url}/{idp.name}/app/x")
        log_in_at_idp(browser, idp)  # consumed by nobody yet? it is: the first browser completes it
        callback = browser.callbacks(f"{world.gateway.url}/{idp.name}/app/callback")[-1]
        other.driver.get(callback)
        assert other.json()["error"] == "invalid_request"
        other.driver.get(f"{world.gateway.url}/{idp.name}/app/x")  # no session: back to the login
        assert other.driver.current_url.startswith(idp.issuer)
    finally:
        other.driver.quit()
    assert world.gateway.events(lambda e: e.get("reason") == "callback.state_mismatch")


def test_a_forged_state_leaves_no_session(world: World, idp: LoginIdp, browser: Browser) -> None:
    browser.driver.get(f"{world.gateway.url}/{idp.name}/app/x")  # a login begins
    forged = urlencode({"state": "A" * 43, "code": "stolen-code", "iss": idp.issuer})
    browser.driver.get(f"{world.gateway.url}/{idp.name}/app/callback?{forged}")
    assert browser.json()["error"] == "invalid_request"
    browser.driver.get(f"{world.gateway.url}/{idp.name}/app/x")
    assert browser.driver.current_url.startswith(idp.issuer)  # still no session


def test_a_tampered_nonce_is_refused(world: World, idp: LoginIdp, browser: Browser) -> None:
    """An attacker changes the nonce of the authorization request: the IdP signs what it was sent, and
    the gateway, comparing with the nonce it keeps, refuses the ID token."""
    browser.driver.get(f"{world.gateway.url}/{idp.name}/app/x")
    authorize = next(u for u in browser.requested() if "code_challenge=" in u)
    query = query_of(authorize) | {"nonce": "tampered-" + "n" * 40}
    parts = urlsplit(authorize)
    browser.driver.get(urlunsplit(parts._replace(query=urlencode(query))))
    log_in_at_idp(browser, idp)
    assert browser.json()["error"] == "bad_gateway"
    assert world.gateway.events(lambda e: e.get("reason") == "id_token.bad_nonce")
    assert f"__Host-cbgw-{idp.name}-app" not in browser.cookies()


def test_pushed_authorization_requests(world: World, idp: LoginIdp, browser: Browser) -> None:
    log_in(world, browser, idp, route="par")
    assert browser.json()["target"] == f"/{idp.name}/par/page?x=1"
    authorize = [u for u in browser.requested() if "request_uri=" in u]
    assert authorize
    assert "code_challenge" not in authorize[0]
    pushed = idp.requests("par")
    assert pushed
    assert pushed[-1]["client_id"] == CLIENT_ID
    assert pushed[-1]["cert_x5t_s256"] == world.material.gateway.thumbprint


def test_the_access_token_is_refreshed_over_mtls(world: World, idp: LoginIdp, browser: Browser) -> None:
    log_in(world, browser, idp, route="fresh")
    first = authorization(browser)
    before = len(idp.requests("token"))
    browser.driver.get(f"{world.gateway.url}/{idp.name}/fresh/again")
    second = authorization(browser)
    assert first != second  # a new access token, from the refresh token
    # the one token request this page cost: the refresh, over mTLS with the gateway's certificate
    wait_until(lambda: len(idp.requests("token")) > before)
    refresh = idp.requests("token")[before:]
    assert len(refresh) == 1
    assert refresh[0]["cert_x5t_s256"] == world.material.gateway.thumbprint
    assert refresh[0]["client_id"] == CLIENT_ID
    if idp.name == "oidc":  # certbound's request event does not name the grant
        assert refresh[0]["grant_type"] == "refresh_token"


def _id_token(server: RunningServer, claims: dict[str, Any]) -> str:
    """An ID token signed with the certbound IdP's own active key (read from its store)."""

    async def sign() -> str:
        store = open_store(f"sqlite:///{server.data_dir / 'certbound.db'}")
        try:
            keys = KeyManager(store, Sealer(load_or_create_kek(server.data_dir / "kek")))
            return (await keys.keyring()).active().sign(claims, typ="JWT")
        finally:
            await store.close()

    return asyncio.run(sign())


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"iss": "https://elsewhere.example"}, "jwt.bad_issuer"),
        ({"aud": "another-client"}, "jwt.bad_audience"),
        ({"nonce": "not-the-nonce"}, "id_token.bad_nonce"),
        ({"exp": 1_000_000}, "jwt.expired"),
    ],
)
def test_an_id_token_failing_a_check_is_refused(world: World, change: dict[str, Any], reason: str) -> None:
    """Signed with the IdP's real key, yet of another issuer, for another client, with another nonce,
    or expired: the check the callback makes refuses each (the flow above shows the nonce end to end)."""
    idp = world.idps["certbound"]
    assert idp.server is not None
    now = int(time.time())
    good = {
        "iss": idp.issuer,
        "sub": "alice",
        "aud": CLIENT_ID,
        "iat": now,
        "exp": now + 300,
        "nonce": "the-nonce",
    }
    token = _id_token(idp.server, good | change)
    settings = IdpSettings.model_validate(world.config["idps"]["certbound"])

    async def verify() -> None:
        provider = IdentityProvider("certbound", settings, "idps.certbound", cache_ttl_max=300)
        try:
            await provider.verify_id_token(token, nonce="the-nonce", leeway=30, now=time.time())
        finally:
            await provider.aclose()

    with pytest.raises(JwtError) as refused:
        asyncio.run(verify())
    assert refused.value.reason == reason
    token = _id_token(idp.server, good)  # and without the change it passes: the refusal is the change's
    asyncio.run(verify())


def test_login_action_redirect_sends_the_browser_to_login_redirect_uri(
    world: World, idp: LoginIdp, browser: Browser
) -> None:
    browser.driver.get(f"{world.gateway.url}/{idp.name}/land/deep/page")
    log_in_at_idp(browser, idp)
    WebDriverWait(browser.driver, 20).until(expected_conditions.url_contains(world.echo.url))
    assert browser.driver.current_url == world.echo.url + "/welcome"
    browser.driver.get(f"{world.gateway.url}/{idp.name}/land/deep/page")  # and the session is there
    assert browser.json()["target"] == f"/{idp.name}/land/deep/page"


def test_a_person_who_denies_the_consent_gets_403_and_no_session(world: World, browser: Browser) -> None:
    idp = world.idps["certbound"]
    assert idp.server is not None
    add = [*CERTBOUND, "users", "add", "dora", "--data-dir", str(idp.server.data_dir), "--password-file", "-"]
    subprocess.run(add, input="dora's password", text=True, check=True)
    browser.driver.get(f"{world.gateway.url}/certbound/app/denied")
    form = browser.driver.find_element(By.CSS_SELECTOR, 'form[method="post"]')  # a new user: asked to consent
    form.find_element(By.NAME, "username").send_keys("dora")
    form.find_element(By.NAME, "password").send_keys("dora's password")
    old = browser.driver.find_element(By.TAG_NAME, "html")
    form.find_element(By.CSS_SELECTOR, 'button[type="submit"]').click()
    wait_until_replaced(browser.driver, old)
    browser.driver.find_element(By.CSS_SELECTOR, 'button[name="decision"][value="deny"]').click()
    WebDriverWait(browser.driver, 20).until(expected_conditions.url_contains(world.gateway.url))
    assert browser.json()["error"] == "access_denied"
    event = world.gateway.events(lambda e: e.get("path") == "/certbound/app/callback" and e["status"] == 403)[
        -1
    ]
    assert event["reason"] == "callback.idp_error"
    assert "access_denied" in event["detail"]
    assert "__Host-cbgw-certbound-app" not in browser.cookies()


def test_an_idp_that_is_down_is_503_not_a_login(world: World) -> None:
    with world.gateway.client() as http:
        answer = http.get(f"{world.gateway.url}/dead/app/page")
    assert answer.status_code == 503
    assert answer.json()["error"] == "temporarily_unavailable"
    assert world.gateway.event_for("/dead/app/page")["reason"] == "idp.unavailable"


def test_sessions_in_postgresql_survive_a_gateway_restart(world: World, browser: Browser) -> None:
    """[store] database_url on PostgreSQL: the gateway migrates it, keeps its sessions there."""
    require_postgres()
    idp = world.idps["certbound"]
    original = world.config
    with throwaway_database() as url:
        world.config = {**original, "store": {**original["store"], "database_url": url}}
        world.restart_gateway()
        try:
            log_in(world, browser, idp, path="on-postgres")
            world.restart_gateway()
            browser.driver.get(f"{world.gateway.url}/certbound/app/after-restart")
            assert browser.json()["target"] == "/certbound/app/after-restart"

            async def rows() -> int:
                store = open_store(url)
                try:
                    async with store.engine.connect() as conn:
                        query = "SELECT count(*) FROM sessions WHERE purpose = 'gateway:certbound-app'"
                        found = await conn.execute(text(query))
                        return int(found.scalar_one())
                finally:
                    await store.close()

            assert asyncio.run(rows()) == 1
        finally:
            world.config = original
            world.restart_gateway()
