"""Rules an attacker probes, each shown to hold: a login rotates the session (the pre-login cookie is
worth nothing after), the consent form wants the CSRF token, a request_uri is its client's alone and
dies after 60 s, PKCE cannot be downgraded when it is optional, and prompt=none never shows a page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import update

from certbound.store.schema import pushed_requests
from tests.server.endpoints.harness import STANDARD_CLIENTS, Harness, Pki, build_harness, settings
from tests.server.login.flow import (
    CB,
    LOGIN_CLIENTS,
    Browser,
    add_user,
    challenge_for,
    hidden_fields,
    query,
    token_request,
)


async def test_the_cookie_from_before_the_login_is_worth_nothing_after(browser: Browser) -> None:
    first = await browser.authorize("web")
    before = browser.http.cookies["__Host-certbound"]
    await browser.log_in(first)
    after = browser.http.cookies["__Host-certbound"]
    assert after != before
    browser.http.cookies.set("__Host-certbound", before)  # an attacker who planted or saw the old one
    quiet = await browser.authorize("web", prompt="none")
    assert query(quiet.headers["location"])["error"] == "login_required"


async def test_the_consent_form_wants_the_csrf_token(browser: Browser) -> None:
    consent = await browser.follow(await browser.log_in(await browser.authorize("web")))
    fields = hidden_fields(consent.text)
    for csrf in ("", "forged-token"):
        posted = await browser.http.post(
            "/consent",
            content=urlencode({**fields, "csrf_token": csrf, "decision": "approve"}),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert posted.status_code == 403
        assert "location" not in posted.headers
    assert (await browser.submit(consent, decision="approve")).status_code == 303  # the real form still works


def _pushed_form(browser: Browser) -> dict[str, str]:
    return {
        "response_type": "code",
        "redirect_uri": CB,
        "scope": "openid",
        "code_challenge": challenge_for(browser.verifier),
        "code_challenge_method": "S256",
    }


async def test_a_request_uri_is_its_clients_alone(browser: Browser, harness: Harness) -> None:
    pushed = (await harness.post("/par", "pushed", _pushed_form(browser))).json()["request_uri"]
    stolen = await browser.http.get("/authorize?" + urlencode({"client_id": "web", "request_uri": pushed}))
    assert stolen.status_code == 400
    assert "location" not in stolen.headers


async def test_a_request_uri_dies_after_its_60_seconds(browser: Browser, harness: Harness) -> None:
    pushed = (await harness.post("/par", "pushed", _pushed_form(browser))).json()["request_uri"]
    async with harness.store.engine.begin() as conn:  # 61 seconds later, as far as the row can tell
        await conn.execute(
            update(pushed_requests).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    late = await browser.http.get("/authorize?" + urlencode({"client_id": "pushed", "request_uri": pushed}))
    assert late.status_code == 400
    assert "location" not in late.headers


async def test_pkce_cannot_be_downgraded_where_it_is_optional(tmp_path: object, pki: Pki) -> None:
    h = await build_harness(
        f"sqlite:///{tmp_path}/optional.db",
        pki=pki,
        settings_=settings(require_pkce=False),
        clients={**STANDARD_CLIENTS, **LOGIN_CLIENTS},
    )
    try:
        await add_user(h)
        browser = Browser(h, h.http)
        native = await browser.authorize("native", pkce=False)  # a public client needs it regardless
        assert query(native.headers["location"])["error"] == "invalid_request"
        code, _ = await browser.code("trusted", pkce=False)
        injected = await browser.exchange("trusted", code)  # a verifier for a code issued without challenge
        assert injected.json()["error"] == "invalid_grant"
        code, _ = await browser.code("trusted")
        without = {"grant_type": "authorization_code", "code": code, "redirect_uri": CB}
        stripped = await token_request(h, "trusted", without)  # the verifier left out
        assert stripped.json()["error"] == "invalid_grant"
        code, _ = await browser.code("trusted", pkce=False)
        plain = await token_request(h, "trusted", without | {"code": code})
        assert plain.status_code == 200, plain.text  # optional and not used: fine
    finally:
        await h.close()


async def test_prompt_none_never_shows_a_page(browser: Browser) -> None:
    await browser.code("web")
    for params, error in (
        ({"max_age": "0"}, "login_required"),
        ({"scope": "openid read"}, "consent_required"),
    ):
        response = await browser.authorize("web", prompt="none", state="q", **params)
        answer = query(response.headers["location"])
        assert (answer["error"], answer["state"]) == (error, "q"), params
    assert "code" in query((await browser.authorize("web", prompt="none")).headers["location"])
