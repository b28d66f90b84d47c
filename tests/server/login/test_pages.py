"""The login, consent and logout pages: wrong password, lock-out, CSRF, expired pages, PAR and logout."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from sqlalchemy import update

from certbound.store.schema import users
from tests.server.endpoints.harness import ISSUER, Harness
from tests.server.login.flow import CB, Browser, challenge_for, hidden_fields, query


async def test_a_wrong_password_shows_the_form_again_with_the_error_tied_to_the_fields(
    browser: Browser,
) -> None:
    page = await browser.follow(await browser.authorize("web"))
    wrong = await browser.submit(page, username="alice", password="not the password")
    assert wrong.status_code == 401
    assert 'role="alert"' in wrong.text
    assert 'aria-describedby="login-error"' in wrong.text
    assert 'value="alice"' in wrong.text  # the username is kept
    unknown = await browser.submit(page, username="mallory", password="not the password")
    assert unknown.status_code == 401
    assert "Wrong username or password." in unknown.text  # the same words: no one learns who exists


async def test_failures_lock_the_account_with_back_off(browser: Browser, harness: Harness) -> None:
    page = await browser.follow(await browser.authorize("web"))
    for _ in range(harness.services.settings.login_max_failures):
        assert (await browser.submit(page, username="alice", password="wrong")).status_code == 401
    locked = await browser.submit(page, username="alice", password="correct horse battery")
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) >= 1
    assert "Too many failed attempts" in locked.text


async def test_a_form_without_the_csrf_token_is_refused(browser: Browser) -> None:
    page = await browser.follow(await browser.authorize("web"))
    fields = hidden_fields(page.text)
    for csrf in ("", "forged-token"):
        response = await browser.http.post(
            "/login",
            content=urlencode(
                {
                    "ticket": fields["ticket"],
                    "csrf_token": csrf,
                    "username": "alice",
                    "password": "correct horse battery",
                }
            ),
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert response.status_code == 403
        assert "location" not in response.headers


async def test_head_is_answered_like_get(browser: Browser) -> None:
    response = await browser.http.head("/login?ticket=nothing")
    assert response.status_code == 400  # the expired page, as for GET, without its body
    assert response.headers["content-type"].startswith("text/html")


async def test_a_page_without_its_session_has_expired(browser: Browser, harness: Harness) -> None:
    page = await browser.follow(await browser.authorize("web"))
    browser.http.cookies.clear()
    response = await browser.submit(page, username="alice", password="correct horse battery")
    assert response.status_code == 400
    assert "expired" in response.text
    assert (await browser.http.get("/login?ticket=nothing")).status_code == 400


async def test_a_disabled_user_cannot_log_in_and_loses_the_session(
    browser: Browser, harness: Harness
) -> None:
    await browser.code("web")
    async with harness.store.engine.begin() as conn:
        await conn.execute(update(users).values(enabled=False))
    again = await browser.authorize("web")
    assert again.headers["location"].startswith("/login")
    refused = await browser.log_in(again)
    assert refused.status_code == 401


async def test_max_age_and_prompt_login_ask_for_the_password_again(browser: Browser) -> None:
    await browser.code("web")
    for params in ({"prompt": "login"}, {"max_age": "0"}):
        response = await browser.authorize("web", **params)
        assert response.headers["location"].startswith("/login"), params
        done = await browser.log_in(response)
        assert query(done.headers["location"]).get("code"), params


async def test_deny_sends_access_denied(browser: Browser) -> None:
    consent = await browser.log_in(await browser.authorize("web", state="d"))
    denied = await browser.submit(await browser.follow(consent), decision="deny")
    answer = query(denied.headers["location"])
    assert (answer["error"], answer["state"], answer["iss"]) == ("access_denied", "d", ISSUER)


async def test_pushed_requests_are_used_once_and_required_where_registered(
    browser: Browser, harness: Harness
) -> None:
    refused = await browser.authorize("pushed", state="p")
    assert query(refused.headers["location"])["error"] == "invalid_request"

    form = {
        "response_type": "code",
        "redirect_uri": CB,
        "scope": "openid",
        "state": "pushed-state",
        "code_challenge": challenge_for(browser.verifier),
        "code_challenge_method": "S256",
    }
    pushed = await harness.post("/par", "pushed", form)
    assert pushed.status_code == 201, pushed.text
    body = pushed.json()
    assert body["expires_in"] == 60
    assert body["request_uri"].startswith("urn:ietf:params:oauth:request_uri:")
    url = "/authorize?" + urlencode({"client_id": "pushed", "request_uri": body["request_uri"]})
    first = await browser.http.get(url)
    assert first.headers["location"].startswith("/login")
    consent = await browser.log_in(first)
    done = await browser.submit(await browser.follow(consent), decision="approve")
    assert query(done.headers["location"])["state"] == "pushed-state"
    again = await browser.http.get(url)
    assert again.status_code == 400  # used once
    bad = await harness.post("/par", "pushed", {**form, "redirect_uri": "https://evil.example/cb"})
    assert bad.status_code == 400
    assert bad.json()["error"] == "invalid_request"
    unauthenticated = await harness.http.post(
        "/par", content=urlencode({**form, "client_id": "pushed"}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert unauthenticated.status_code == 401


async def test_logout_asks_then_ends_the_session_and_goes_back_with_state(
    browser: Browser, harness: Harness
) -> None:
    code, _ = await browser.code("web")
    id_token = (await browser.exchange("web", code)).json()["id_token"]
    params = {
        "id_token_hint": id_token,
        "post_logout_redirect_uri": "https://app.example/bye",
        "state": "bye",
    }
    ask = await browser.http.get("/logout?" + urlencode(params))
    assert ask.status_code == 200
    assert "Log out?" in ask.text
    done = await browser.submit(ask, logout="yes")
    assert done.status_code == 303
    assert done.headers["location"] == "https://app.example/bye?state=bye"
    assert "Max-Age=0" in done.headers["set-cookie"]
    after = await browser.authorize("web")
    assert after.headers["location"].startswith("/login")  # logged out
    evil = await browser.http.get(
        "/logout?" + urlencode({**params, "post_logout_redirect_uri": "https://evil.example"})
    )
    assert evil.status_code == 400
    forged = await browser.http.get(
        "/logout?" + urlencode({"id_token_hint": re.sub(r"\.[^.]+$", ".AAAA", id_token)})
    )
    assert forged.status_code == 400


async def test_the_inline_stylesheet_is_the_one_the_policy_allows(browser: Browser) -> None:
    """CSP ``style-src 'sha256-...'``: the hash is of the <style> element's exact text."""
    import base64
    import hashlib

    page = await browser.follow(await browser.authorize("web"))
    style = re.search(r"<style>(.*?)</style>", page.text, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in page.headers["content-security-policy"]
