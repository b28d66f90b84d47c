"""`prompt=login` and `max_age` ask for the password again: the consent page cannot be used to skip the
login page the request was sent to (the ticket names a request that still needs a login)."""

from __future__ import annotations

import re
from urllib.parse import urlencode

import pytest

from tests.server.login.flow import Browser, hidden_fields, query


@pytest.mark.parametrize("params", [{"prompt": "login"}, {"max_age": "0"}])
async def test_the_consent_form_does_not_skip_a_login_asked_for(
    browser: Browser, params: dict[str, str]
) -> None:
    await browser.code("web")  # logged in, consented
    asked = await browser.authorize("web", prompt="consent " + params.get("prompt", ""), **{
        k: v for k, v in params.items() if k != "prompt"
    })  # fmt: skip
    assert asked.headers["location"].startswith("/login?ticket=")
    login_page = await browser.follow(asked)
    fields = hidden_fields(login_page.text)
    # straight to the consent page with the login page's ticket and CSRF token, no password
    shown = await browser.http.get("/consent?" + urlencode({"ticket": fields["ticket"]}))
    assert 'value="approve"' not in shown.text
    posted = await browser.http.post(
        "/consent",
        content=urlencode({**fields, "decision": "approve"}),
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    location = posted.headers.get("location", "")
    assert "code" not in query(location), location
    assert re.match(r"/login\?ticket=", location), (posted.status_code, location)
    done = await browser.log_in(posted)  # the password, as asked: then the code
    if done.headers["location"].startswith("/consent"):
        done = await browser.submit(await browser.follow(done), decision="approve")
    assert query(done.headers["location"]).get("code")
