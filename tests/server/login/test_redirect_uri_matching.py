"""redirect_uri matching at /authorize: character for character, except the port of a loopback http
redirect URI, which a native app picks at run time (RFC 8252 section 7.3); no prefix, case, port or
fragment games, and never for https or for names such as localhost."""

from __future__ import annotations

import pytest

from tests.server.login.flow import CB, Browser, query


@pytest.mark.parametrize(
    ("client", "uri"),
    [
        ("web", CB + "/"),
        ("web", CB + "x"),
        ("web", CB + "?x=1"),
        ("web", CB + "#frag"),
        ("web", "https://APP.example/cb"),
        ("web", "https://app.example:443/cb"),
        ("web", "https://app.example:8443/cb"),
        ("web", "HTTPS://app.example/cb"),
        ("web", "https://app.example/CB"),
        ("web", "https://app.example.evil.example/cb"),
        ("web", "https://app.example@evil.example/cb"),
        ("native", "http://127.0.0.1:53123/cb/"),
        ("native", "http://127.0.0.1:53123/CB"),
        ("native", "http://127.0.0.1:53123/cb#x"),
        ("native", "http://127.0.0.1:53123/cb?x=1"),
        ("native", "http://localhost:53123/cb"),
        ("native", "http://[::1]:53123/cb"),
        ("native", "https://127.0.0.1:53123/cb"),
        ("native", "http://127.0.0.1:0/cb"),
        ("native", "http://127.0.0.1:99999/cb"),
        ("native", "http://127.0.0.1:053123/cb"),
        ("native", "http://127.0.0.1:/cb"),
        ("native", "http://127.0.0.1:53123@evil.example/cb"),
        ("native", "http://127.0.0.1.evil.example:9000/cb"),
    ],
)
async def test_anything_but_a_registered_uri_is_an_error_page(
    browser: Browser, client: str, uri: str
) -> None:
    response = await browser.authorize(client, redirect_uri=uri)
    assert response.status_code == 400, (uri, response.headers.get("location"))
    assert "location" not in response.headers


@pytest.mark.parametrize(
    "uri", ["http://127.0.0.1:53123/cb", "http://127.0.0.1/cb", "http://127.0.0.1:9000/cb"]
)
async def test_a_loopback_redirect_uri_may_name_any_port(browser: Browser, uri: str) -> None:
    code, _ = await browser.code("native", redirect_uri=uri, scope="openid")
    exchanged = await browser.exchange("native", code, redirect_uri=uri)
    assert exchanged.status_code == 200, exchanged.text


async def test_the_code_is_bound_to_the_port_actually_used(browser: Browser) -> None:
    code, _ = await browser.code("native", redirect_uri="http://127.0.0.1:53123/cb", scope="openid")
    other_port = await browser.exchange("native", code, redirect_uri="http://127.0.0.1:9000/cb")
    assert other_port.json()["error"] == "invalid_grant"


async def test_errors_go_to_the_port_the_app_listens_on(browser: Browser) -> None:
    response = await browser.authorize(
        "native", redirect_uri="http://127.0.0.1:53123/cb", response_type="token"
    )
    assert response.headers["location"].startswith("http://127.0.0.1:53123/cb?")
    assert query(response.headers["location"])["error"] == "unsupported_response_type"
