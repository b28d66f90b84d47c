"""The world of the gateway's login tests: both identity providers with the gateway registered as a
code-flow client (``gateway-web``: tls_client_auth with the gateway's certificate, tokens bound to
it, refresh tokens), a gateway in front of the echo upstream with login routes for each, and a
headless Chromium (Debian's) that records every URL it requests (the performance log), so that a test
can replay a callback or tamper with an authorization request as an attacker would.

Routes per IdP (``/<idp>/...``): ``app`` (login, session, logout with revocation), ``fresh`` (the
same, refreshing its access token on every request: ``cache_tokens_leeway`` longer than the token
lives), ``par`` (pushed authorization requests), ``red`` (sessions in Redis), ``land``
(``login_action = "redirect"``). ``/dead/app`` logs in at an IdP that is not there.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import tomli_w
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

from certbound.client import ClientConfig, OAuthClient, OAuthServerError
from certbound.sealing import Sealer, load_kek
from certbound.sessions import SessionCookie, SqlSessionStore
from certbound.store.sql import open_store
from tests.browser.chromium import CHROMEDRIVER, CHROMIUM, FLAGS, require_chromium, wait_until_replaced
from tests.client.material import Material
from tests.gateway.echo import Echo
from tests.gateway.gatewayproc import RunningGateway, start_gateway
from tests.interop.peers import start_oidc_provider
from tests.server.process.serverproc import RunningServer, free_port, log_events, start_server

CLIENT_ID = "gateway-web"
#: A client of its own at both IdPs (client_secret_basic), for the client_credentials auth method; the
#: secret has characters RFC 6749 section 2.3.1 form-encodes inside the Basic header.
CALLER_ID, CALLER_SECRET = "caller", "s3cr+t:with/odd=chars & more"
#: The one user of oidc-provider's password grant.
USER, USER_PASSWORD = "pat", "pat's pass:word"
ROUTES = ("app", "fresh", "par", "red", "land")
REDIS_URL = "redis://127.0.0.1:6379/0"
IDENTITY = {"X-Subject": "sub", "X-Scope": "scope", "X-Client-Id": "client_id"}


@dataclass
class LoginIdp:
    """One identity provider of the login tests."""

    name: str
    issuer: str
    ca_file: Path
    material: Material
    gateway_url: str
    stop: Callable[[], None]
    #: the IdP's log of calls to an endpoint (token, revocation, par): client_id, cert_x5t_s256, ...
    requests: Callable[[str], list[dict[str, Any]]]
    server: RunningServer | None = None
    username: str = "alice"
    password: str = "whatever"

    def oauth(self) -> OAuthClient:
        """The gateway's own client at this IdP (its certificate): to introspect and revoke in tests."""
        return OAuthClient(
            ClientConfig(
                self.issuer,
                CLIENT_ID,
                "tls_client_auth",
                identities=[self.material.gateway.identity()],
                ca_file=self.ca_file,
            )
        )

    def active(self, token: str) -> bool:
        with self.oauth() as oauth:
            return bool(oauth.introspect(token).data["active"])

    def refresh_refused(self, refresh_token: str) -> bool:
        """Whether the IdP refuses `refresh_token` (invalid_grant); a token it accepts is used up."""
        with self.oauth() as oauth:
            try:
                oauth.refresh_token(refresh_token)
            except OAuthServerError as exc:
                return exc.error == "invalid_grant"
        return False


def _redirects(gateway_url: str, idp: str) -> list[str]:
    return [f"{gateway_url}/{idp}/{route}/callback" for route in ROUTES]


def start_certbound_login_idp(material: Material, base: Path, gateway_url: str, echo: Echo) -> LoginIdp:
    data = base / "data"
    port = free_port()
    issuer = f"https://127.0.0.1:{port}"
    client = {
        "client_id": CLIENT_ID,
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": material.gateway.subject,
        "tls_client_certificate_bound_access_tokens": True,
        "grant_types": ["authorization_code", "refresh_token"],
        "redirect_uris": _redirects(gateway_url, "certbound"),
        "post_logout_redirect_uris": [echo.url + "/bye"],
        "scope": "offline_access",
        "resource_server_audiences": [issuer],
    }
    base.mkdir(parents=True, exist_ok=True)
    caller = {
        "client_id": CALLER_ID,
        "token_endpoint_auth_method": "client_secret_basic",
        "client_secret_sha256": hashlib.sha256(CALLER_SECRET.encode()).hexdigest(),
        "grant_types": ["client_credentials"],
        "scope": "api:read",
    }
    clients = base / "clients.toml"
    clients.write_text(tomli_w.dumps({"client": [client, caller]}))
    args = [
        "--clients-file",
        str(clients),
        "--client-ca",
        str(material.ca_file),
        "--mtls-port",
        str(free_port()),
    ]
    server = start_server(args, data, port=port)

    paths = {"token": "/token", "revocation": "/revoke", "par": "/par"}

    def requests(endpoint: str) -> list[dict[str, Any]]:
        """The request events of `endpoint` (path, status, the authenticated client_id, the certificate)."""
        return log_events(server.output, "request", lambda e: e.get("path") == paths[endpoint], wait=0)

    password = (data / "alice-password").read_text().strip()
    ca_file = data / "pki" / "ca.crt"
    return LoginIdp("certbound", issuer, ca_file, material, gateway_url, server.stop, requests, server,
                    password=password)  # fmt: skip


def start_oidc_login_idp(material: Material, base: Path, gateway_url: str, echo: Echo) -> LoginIdp:
    client = {
        "client_id": CLIENT_ID,
        "token_endpoint_auth_method": "tls_client_auth",
        "tls_client_auth_subject_dn": material.gateway.subject,
        "tls_client_certificate_bound_access_tokens": True,
        "grant_types": ["authorization_code", "refresh_token", "password"],
        "response_types": ["code"],
        "redirect_uris": _redirects(gateway_url, "oidc"),
        "post_logout_redirect_uris": [echo.url + "/bye"],
        "scope": "openid offline_access",
    }
    caller = {
        "client_id": CALLER_ID,
        "token_endpoint_auth_method": "client_secret_basic",
        "client_secret": CALLER_SECRET,
        "grant_types": ["client_credentials"],
        "scope": "api:read",
    }
    provider = start_oidc_provider(
        material,
        base,
        server=material.server,
        clients=[client, caller],
        code_flow=True,
        log_introspection=True,
        password_grant={"username": USER, "password": USER_PASSWORD},
    )

    events = {"token": "token", "revocation": "revocation", "par": "pushed_authorization_request"}

    def requests(endpoint: str) -> list[dict[str, Any]]:
        return [
            record
            for line in list(provider.log)
            if line.startswith('{"event":') and (record := json.loads(line))["event"] == events[endpoint]
        ]

    return LoginIdp("oidc", provider.issuer, material.ca_file, material, gateway_url, provider.stop, requests)


def login_routes(idp: LoginIdp, upstream: str) -> list[dict[str, Any]]:
    scopes = (
        ["openid", "profile", "offline_access"] if idp.name == "certbound" else ["openid", "offline_access"]
    )
    common: dict[str, Any] = {
        "upstream": upstream,
        "idp": idp.name,
        "auth_methods": ["authorization_code", "session"],
        "scopes": scopes,
        "upstream_headers": IDENTITY,
        "logout_uri_suffix": "/logout",
        "logout_methods": ["POST", "DELETE"],
        "logout_revoke": True,
        "logout_redirect_uri": upstream + "/bye",
    }
    if idp.name == "oidc":  # oidc-provider grants offline_access only with prompt=consent
        common["authorization_query_args"] = {"prompt": "consent"}
    routes = []
    for name in ROUTES:
        route = {**common, "name": f"{idp.name}-{name}", "paths": [f"/{idp.name}/{name}"],
                 "redirect_uri": f"{idp.gateway_url}/{idp.name}/{name}/callback"}  # fmt: skip
        if name == "fresh":
            route["cache_tokens_leeway"] = 3600  # longer than any token lives: refreshed every time
        if name == "par":
            route["use_pushed_authorization_requests"] = True
        if name == "land":
            route |= {"login_action": "redirect", "login_redirect_uri": upstream + "/welcome"}
        if name == "red":
            route |= {"session_storage": "redis", "redis_url": REDIS_URL}
        routes.append(route)
    grants: dict[str, Any] = {"upstream": upstream, "idp": idp.name, "upstream_headers": IDENTITY}
    routes.append({**grants, "name": f"{idp.name}-cc", "paths": [f"/{idp.name}/cc"],
                   "auth_methods": ["client_credentials"], "scopes": ["api:read"]})  # fmt: skip
    routes.append(
        {**grants, "name": f"{idp.name}-ui", "paths": [f"/{idp.name}/ui"], "auth_methods": ["userinfo"]}
    )
    routes.append({**grants, "name": f"{idp.name}-rt", "paths": [f"/{idp.name}/rt"],
                   "auth_methods": ["refresh_token"]})  # fmt: skip
    if idp.name == "oidc":  # certbound's server has no password grant
        routes.append({**grants, "name": "oidc-pw", "paths": ["/oidc/pw"], "auth_methods": ["password"]})
        both = {"auth_methods": ["client_credentials", "password"], "scopes": ["api:read"],
                "client_credentials_param_type": ["header"], "password_param_type": ["body"]}  # fmt: skip
        routes.append({**grants, **both, "name": "oidc-both", "paths": ["/oidc/both"]})
    return routes


def login_gateway_config(material: Material, echo: Echo, idps: dict[str, LoginIdp], data_dir: Path,
                         port: int) -> dict[str, Any]:  # fmt: skip
    dead = {
        "issuer": f"https://127.0.0.1:{free_port()}",  # nothing listens there
        "client_id": CLIENT_ID,
        "tls_client_auth_cert": str(material.gateway.cert_file),
        "tls_client_auth_key": str(material.gateway.key_file),
        "ca_bundle": str(material.ca_file),
    }
    dead_route = {"name": "dead-app", "paths": ["/dead/app"], "upstream": echo.url, "idp": "dead",
                  "auth_methods": ["authorization_code", "session"],
                  "redirect_uri": f"https://127.0.0.1:{port}/dead/app/callback"}  # fmt: skip
    return {
        "listener": {
            "tls_cert": str(material.server.cert_file),
            "tls_key": str(material.server.key_file),
            "port": port,
        },
        "store": {"data_dir": str(data_dir)},
        "idps": {
            name: {
                "issuer": idp.issuer,
                "client_id": CLIENT_ID,
                "client_auth": "tls_client_auth",
                "tls_client_auth_cert": str(material.gateway.cert_file),
                "tls_client_auth_key": str(material.gateway.key_file),
                "ca_bundle": str(idp.ca_file),
            }
            for name, idp in idps.items()
        }
        | {"dead": dead},
        "routes": [r for idp in idps.values() for r in login_routes(idp, echo.url)] + [dead_route],
    }


@dataclass
class World:
    material: Material
    echo: Echo
    idps: dict[str, LoginIdp]
    config: dict[str, Any]
    workdir: Path
    gateway: RunningGateway

    def restart_gateway(self) -> None:
        self.gateway.stop()
        self.gateway = start_gateway(self.config, self.workdir, ca_file=self.material.ca_file)


# -- the browser ------------------------------------------------------------------------------------


@dataclass
class Browser:
    """A headless Chromium that keeps every URL it requested."""

    driver: webdriver.Chrome
    urls: list[str] = field(default_factory=list)

    def requested(self) -> list[str]:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message.get("method") == "Network.requestWillBeSent":
                self.urls.append(message["params"]["request"]["url"])
        return self.urls

    def callbacks(self, prefix: str) -> list[str]:
        return [u for u in self.requested() if u.startswith(prefix) and "/callback?" in u]

    def text(self) -> str:
        return str(self.driver.find_element(By.TAG_NAME, "body").text)

    def json(self) -> dict[str, Any]:
        """The page as JSON (the echo's answer, or the gateway's error), as Chromium shows it."""
        found: dict[str, Any] = json.loads(self.text())
        return found

    def cookies(self) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in self.driver.get_cookies()}

    def post(self, url: str) -> None:
        """Submit an empty form to `url` (a logout button), and wait for where it leads."""
        old = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.execute_script(
            "const f = document.createElement('form'); f.method = 'POST'; f.action = arguments[0];"
            "document.body.appendChild(f); f.submit();",
            url,
        )
        wait_until_replaced(self.driver, old)


def start_browser(profile: Path) -> Browser:
    require_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.accept_insecure_certs = True
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    return Browser(driver)


def _click_and_wait(driver: webdriver.Chrome, selector: str) -> None:
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, selector).click()
    wait_until_replaced(driver, old)


def log_in_at_idp(browser: Browser, idp: LoginIdp) -> None:
    """Play the person at the IdP's pages (login, consent) until the browser has left the IdP."""
    driver = browser.driver
    deadline = time.monotonic() + 60
    while driver.current_url.startswith(idp.issuer):
        assert time.monotonic() < deadline, f"stuck at {driver.current_url}: {browser.text()[:500]}"
        try:
            _one_step(driver, idp)
        except WebDriverException:  # the page changed under the lookup: look again
            time.sleep(0.1)


def _one_step(driver: webdriver.Chrome, idp: LoginIdp) -> None:
    """Fill in or approve the page the IdP shows now (NoSuchElementException while it loads)."""
    form = driver.find_element(By.CSS_SELECTOR, 'form[method="post"], form[method="POST"]')
    names = {e.get_attribute("name") for e in form.find_elements(By.TAG_NAME, "input")}
    if "password" in names:
        user_field = "username" if "username" in names else "login"
        form.find_element(By.NAME, user_field).clear()
        form.find_element(By.NAME, user_field).send_keys(idp.username)
        form.find_element(By.NAME, "password").send_keys(idp.password)
        _click_and_wait(driver, 'form[method="post"] button[type="submit"], form button[type="submit"]')
    elif driver.find_elements(By.CSS_SELECTOR, 'button[name="decision"][value="approve"]'):
        _click_and_wait(driver, 'button[name="decision"][value="approve"]')
    else:
        _click_and_wait(driver, 'form button[type="submit"], form button[autofocus]')


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def world_fixture(material: Material, echo: Echo, base: Path) -> Iterator[World]:
    port = free_port()
    gateway_url = f"https://127.0.0.1:{port}"
    idps: dict[str, LoginIdp] = {}
    gateway = None
    try:
        idps["certbound"] = start_certbound_login_idp(material, base / "certbound", gateway_url, echo)
        idps["oidc"] = start_oidc_login_idp(material, base / "oidc", gateway_url, echo)
        config = login_gateway_config(material, echo, idps, base / "gwdata", port)
        workdir = base / "gateway"
        gateway = start_gateway(config, workdir, ca_file=material.ca_file)
        world = World(material, echo, idps, config, workdir, gateway)
        yield world
        gateway = world.gateway
    finally:
        if gateway is not None:
            gateway.stop()
        for idp in idps.values():
            idp.stop()


def stored_session(
    world: World, browser: Browser | None, route: str, cookie_value: str | None = None
) -> dict[str, Any] | None:
    """The data of the session the browser's cookie for `route` (or `cookie_value`) names, read from
    the gateway's store with its sealing key (None: no cookie, or no such session any more)."""
    if browser is not None:
        cookie_value = browser.cookies().get(f"__Host-cbgw-{route}", {}).get("value")
    if not cookie_value:
        return None
    data_dir = Path(world.config["store"]["data_dir"])
    sealer = Sealer(load_kek(data_dir / "session.key"))
    cookie = SessionCookie(sealer, name=f"cbgw-{route}", purpose=f"gateway:{route}")
    ticket = cookie.open(cookie_value)

    async def read() -> dict[str, Any] | None:
        store = open_store(f"sqlite:///{data_dir / 'certbound.db'}")
        try:
            sessions = SqlSessionStore(store.engine, sealer)
            session = await sessions.get(ticket.session_id, purpose=f"gateway:{route}")
            return dict(session.data) if session is not None else None
        finally:
            await store.close()

    return asyncio.run(read())
