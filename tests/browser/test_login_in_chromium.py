"""A person logs in with a real browser: headless Chromium (Debian's) against a real `certbound serve`.

Login, consent, the redirect with the code, the token exchange, userinfo and logout; and a wrong
password, a locked account, a form without its CSRF token, and ``prompt=none`` without a session, each
shown on the page (or in the redirect) as they should be. The login and consent pages are
photographed into docs/ on the way.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import subprocess
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from tests.browser.chromium import wait_until_replaced
from tests.browser.conftest import Site
from tests.server.process.serverproc import CERTBOUND
from tests.server.wire.wire import basic

pytestmark = pytest.mark.slow
DOCS = Path(__file__).resolve().parents[2] / "docs"


def authorize_url(site: Site, verifier: str, **extra: str) -> str:
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    params = {
        "response_type": "code",
        "client_id": site.app.client_id,
        "redirect_uri": site.callback.base + "/cb",
        "scope": "openid profile email offline_access",
        "state": "st-" + secrets.token_hex(4),
        "nonce": "n-" + secrets.token_hex(4),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }
    return f"{site.server.url}/authorize?{urlencode(params)}"


def wait_for(driver: webdriver.Chrome, url_part: str) -> None:
    """Until the browser has moved to a URL containing `url_part` (a click does not wait for the page)."""
    WebDriverWait(driver, 20).until(expected_conditions.url_contains(url_part))


def click_and_wait(driver: webdriver.Chrome, selector: str) -> None:
    """Click, then wait until the page the click posted to has replaced this one."""
    old = driver.find_element(By.TAG_NAME, "html")
    driver.find_element(By.CSS_SELECTOR, selector).click()
    wait_until_replaced(driver, old)


def log_in(driver: webdriver.Chrome, username: str, password: str) -> None:
    """Fill in the login page's one form, as its contract says, post it, wait for the answer."""
    form = driver.find_element(By.CSS_SELECTOR, 'form[method="post"]')
    assert len(driver.find_elements(By.TAG_NAME, "form")) == 1
    form.find_element(By.NAME, "username").clear()
    form.find_element(By.NAME, "username").send_keys(username)
    form.find_element(By.NAME, "password").send_keys(password)
    click_and_wait(driver, 'form[method="post"] button[type="submit"]')


def http(site: Site) -> httpx.Client:
    return site.server.client(cert=False)


def test_login_consent_code_tokens_userinfo_and_logout(site: Site, browser: webdriver.Chrome) -> None:
    verifier = secrets.token_urlsafe(48)
    browser.get(authorize_url(site, verifier, state="the-state"))
    assert "/login?ticket=" in browser.current_url
    assert browser.title == "Log in · certbound"
    username = browser.find_element(By.ID, "username")
    assert browser.switch_to.active_element == username  # focus starts on the first field
    assert browser.find_element(By.CSS_SELECTOR, 'label[for="username"]').text == "Username"
    assert browser.find_element(By.CSS_SELECTOR, 'label[for="password"]').text == "Password"
    # the stylesheet is applied: the Content-Security-Policy allows it by its hash, and nothing else
    assert browser.find_element(By.TAG_NAME, "main").value_of_css_property("border-top-left-radius") == "12px"
    browser.save_screenshot(str(DOCS / "login-page.png"))
    log_in(browser, "alice", site.password)

    assert "/consent?ticket=" in browser.current_url
    assert "Browser Test App" in browser.page_source
    browser.save_screenshot(str(DOCS / "consent-page.png"))
    click_and_wait(browser, 'button[name="decision"][value="approve"]')

    answer = site.callback.last("/cb")
    assert browser.current_url.startswith(site.callback.base + "/cb?")
    assert answer["state"] == "the-state"
    assert answer["iss"] == site.server.url
    with http(site) as client:
        token = client.post(
            site.server.url + "/token",
            data={"grant_type": "authorization_code", "code": answer["code"], "code_verifier": verifier,
                  "redirect_uri": site.callback.base + "/cb"},
            headers={"Authorization": basic(site.app.client_id, site.app.secret or "")},
        )  # fmt: skip
        assert token.status_code == 200, token.text
        tokens = token.json()
        assert {"access_token", "refresh_token", "id_token"} <= set(tokens)
        info = client.get(
            site.server.url + "/userinfo", headers={"Authorization": f"Bearer {tokens['access_token']}"}
        )
        assert info.status_code == 200
        assert info.json()["preferred_username"] == "alice"
        assert info.json()["email"] == "alice@example.com"

    logout = {"id_token_hint": tokens["id_token"], "post_logout_redirect_uri": site.callback.base + "/bye",
              "state": "bye-state"}  # fmt: skip
    browser.get(f"{site.server.url}/logout?{urlencode(logout)}")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Log out?"
    click_and_wait(browser, 'button[name="logout"]')
    assert site.callback.last("/bye") == {"state": "bye-state"}
    browser.get(authorize_url(site, verifier))
    assert "/login?ticket=" in browser.current_url  # the session ended


def test_a_wrong_password_is_said_next_to_the_fields(site: Site, browser: webdriver.Chrome) -> None:
    browser.get(authorize_url(site, secrets.token_urlsafe(48)))
    log_in(browser, "alice", "not her password")
    error = browser.find_element(By.ID, "login-error")
    assert error.text == "Wrong username or password."
    assert error.get_attribute("role") == "alert"
    password = browser.find_element(By.ID, "password")
    assert password.get_attribute("aria-describedby") == "login-error"
    assert password.get_attribute("aria-invalid") == "true"
    assert browser.find_element(By.ID, "username").get_attribute("value") == "alice"


def test_a_locked_account_says_to_wait(site: Site, browser: webdriver.Chrome) -> None:
    subprocess.run([*CERTBOUND, "users", "add", "locky", "--data-dir", str(site.server.data_dir),
                    "--password-file", "-"], input="locky's password", text=True, check=True)  # fmt: skip
    browser.get(authorize_url(site, secrets.token_urlsafe(48)))
    for _ in range(5):
        log_in(browser, "locky", "guess")
        assert "Wrong username or password." in browser.page_source
    log_in(browser, "locky", "locky's password")  # right, but too late
    assert (
        "Too many failed attempts. Try again in 1 minute." in browser.find_element(By.ID, "login-error").text
    )


def test_a_form_without_its_csrf_token_is_refused(site: Site, browser: webdriver.Chrome) -> None:
    browser.get(authorize_url(site, secrets.token_urlsafe(48)))
    browser.execute_script("document.querySelector('input[name=csrf_token]').remove()")  # a forged form
    log_in(browser, "alice", site.password)
    assert browser.find_element(By.TAG_NAME, "h1").text == "The form could not be accepted"
    assert "/login" in browser.current_url


def test_prompt_none_without_a_session_is_login_required(site: Site, browser: webdriver.Chrome) -> None:
    browser.get(authorize_url(site, secrets.token_urlsafe(48), prompt="none", state="quiet"))
    answer = site.callback.last("/cb")
    assert (answer["error"], answer["state"], answer["iss"]) == ("login_required", "quiet", site.server.url)


def test_a_user_added_while_the_server_runs_logs_in_at_once(site: Site, browser: webdriver.Chrome) -> None:
    subprocess.run([*CERTBOUND, "users", "add", "bob", "--data-dir", str(site.server.data_dir),
                    "--password-file", "-"], input="bob's password\n", text=True, check=True)  # fmt: skip
    browser.get(authorize_url(site, secrets.token_urlsafe(48)))
    log_in(browser, "bob", "bob's password")
    assert "/consent?ticket=" in browser.current_url
    assert "logged in as bob" in browser.find_element(By.CLASS_NAME, "who").text
