"""The authorization code flow end to end, in-process: pages, code, tokens, userinfo, refresh; and every
rule of the issue shown to hold (replay, PKCE, redirect_uri, reuse, bound refresh tokens, userinfo)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from certbound.jose.claims import left_hash
from certbound.pki.pem import cert_to_pem
from certbound.store.cert_status import CertificateRecord, CertStatusStore
from tests.server.endpoints.harness import API, ISSUER, Harness
from tests.server.login.flow import CB, Browser, query, token_request
from tests.server.wire.wire import jwt_claims


def verify_id_token(h: Harness, token: str, alg: str = "RS256") -> dict[str, Any]:
    keyset = KeySet.import_key_set(h.keys.current().jwks(datetime.now(UTC)))  # type: ignore[arg-type]
    decoded = jwt.decode(token, keyset, algorithms=[alg])
    assert decoded.header["alg"] == alg
    return dict(decoded.claims)


async def userinfo(h: Harness, token: str, cert: str | None = None) -> Any:
    headers = {"authorization": f"Bearer {token}"}
    if cert:
        headers["x-test-cert"] = cert
    return await h.http.get("/userinfo", headers=headers)


async def test_a_person_logs_in_consents_and_the_client_gets_tokens(
    browser: Browser, harness: Harness
) -> None:
    first = await browser.authorize("web", nonce="n-0S6", state="xyz")
    assert first.status_code == 303
    assert first.headers["location"].startswith("/login?ticket=")
    cookie = first.headers["set-cookie"]
    assert cookie.startswith("__Host-certbound=")
    for attribute in ("Path=/", "Secure", "HttpOnly", "SameSite=Lax"):
        assert attribute in cookie
    page = await browser.follow(first)
    assert page.status_code == 200
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "script-src" not in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert 'name="username"' in page.text
    assert 'name="password"' in page.text
    assert "Example Web App" in page.text
    consent = await browser.submit(page, username="alice", password="correct horse battery")
    assert consent.status_code == 303
    assert consent.headers["location"].startswith("/consent?ticket=")
    assert consent.headers["set-cookie"].split(";")[0] != cookie.split(";")[0]  # rotated at login
    consent_page = await browser.follow(consent)
    assert 'name="decision" value="approve"' in consent_page.text
    assert "See your e-mail address" in consent_page.text
    back = await browser.submit(consent_page, decision="approve")
    assert back.status_code == 303
    location = back.headers["location"]
    assert location.startswith(CB + "?")
    answer = query(location)
    assert answer["state"] == "xyz"
    assert answer["iss"] == ISSUER

    tokens = await browser.exchange("web", answer["code"])
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["scope"] == "openid profile email"
    assert "refresh_token" not in body  # an OpenID request without offline_access
    claims = verify_id_token(harness, body["id_token"])
    assert claims["iss"] == ISSUER
    assert claims["sub"] == "sub-alice"
    assert claims["aud"] == "web"
    assert claims["nonce"] == "n-0S6"
    assert claims["at_hash"] == left_hash(body["access_token"], "RS256")
    assert isinstance(claims["sid"], str)
    assert isinstance(claims["auth_time"], int)
    info = await userinfo(harness, body["access_token"])
    assert info.status_code == 200
    assert info.json() == {
        "sub": "sub-alice",
        "name": "Alice Liddell",
        "preferred_username": "alice",
        "email": "alice@example.com",
        "email_verified": True,
    }


async def test_consent_is_remembered_and_the_session_reused(browser: Browser) -> None:
    await browser.code("web")
    again = await browser.authorize("web")
    assert again.status_code == 303
    assert query(again.headers["location"]).get("code")  # no login page, no consent page
    wider = await browser.authorize("web", scope="openid read")
    assert wider.headers["location"].startswith("/consent")  # "read" was never approved
    asked = await browser.authorize("web", prompt="consent")
    assert asked.headers["location"].startswith("/consent")


async def test_a_trusted_client_gets_no_consent_page(browser: Browser) -> None:
    first = await browser.authorize("trusted")
    logged_in = await browser.log_in(first)
    assert logged_in.headers["location"].startswith(CB + "?code=")


async def test_refresh_tokens_rotate_and_a_reuse_revokes_the_family(
    browser: Browser, harness: Harness
) -> None:
    code, _ = await browser.code("web", scope="openid offline_access read")
    body = (await browser.exchange("web", code)).json()
    first_access, first_refresh = body["access_token"], body["refresh_token"]
    refreshed = await token_request(
        harness, "web", {"grant_type": "refresh_token", "refresh_token": first_refresh}
    )
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first_refresh
    assert "nonce" not in verify_id_token(harness, second["id_token"])
    narrowed = await token_request(
        harness,
        "web",
        {"grant_type": "refresh_token", "refresh_token": second["refresh_token"], "scope": "read"},
    )
    assert narrowed.status_code == 200
    assert narrowed.json()["scope"] == "read"
    third = narrowed.json()
    # the first refresh token, used again: reuse; the whole family goes
    reused = await token_request(
        harness, "web", {"grant_type": "refresh_token", "refresh_token": first_refresh}
    )
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"
    latest = await token_request(
        harness, "web", {"grant_type": "refresh_token", "refresh_token": third["refresh_token"]}
    )
    assert latest.json()["error"] == "invalid_grant"
    for token in (first_access, second["access_token"], third["access_token"]):
        assert (await harness.introspect("web", token)).json() == {"active": False}


async def test_a_code_is_single_use_and_a_replay_revokes_what_it_issued(
    browser: Browser, harness: Harness
) -> None:
    code, _ = await browser.code("web", scope="openid offline_access")
    first = await browser.exchange("web", code)
    assert first.status_code == 200
    replay = await browser.exchange("web", code)
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    body = first.json()
    assert (await harness.introspect("web", body["access_token"])).json() == {"active": False}
    refresh = await token_request(
        harness, "web", {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert refresh.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"verifier": "x" * 43}, "pkce mismatch"),
        ({"redirect_uri": "https://app.example/other"}, "redirect_uri mismatch"),
        ({"client": "trusted"}, "another client"),
    ],
)
async def test_the_code_is_bound_to_client_redirect_uri_and_challenge(
    browser: Browser, change: dict[str, str], reason: str
) -> None:
    code, _ = await browser.code("web")
    client = change.pop("client", "web")
    response = await browser.exchange(client, code, **change)
    assert response.status_code == 400, reason
    assert response.json()["error"] == "invalid_grant", reason


async def test_a_missing_verifier_is_refused(browser: Browser, harness: Harness) -> None:
    code, _ = await browser.code("web")
    response = await token_request(
        harness, "web", {"grant_type": "authorization_code", "code": code, "redirect_uri": CB}
    )
    assert response.json()["error"] == "invalid_grant"


async def test_pkce_is_required_and_plain_refused(browser: Browser) -> None:
    missing = await browser.authorize("native", pkce=False)
    assert query(missing.headers["location"])["error"] == "invalid_request"
    plain = await browser.authorize("web", code_challenge=browser.verifier, code_challenge_method="plain")
    refused = query(plain.headers["location"])
    assert refused["error"] == "invalid_request"
    assert "S256" in refused["error_description"]
    assert refused["iss"] == ISSUER


async def test_a_bad_client_or_redirect_uri_is_an_error_page_never_a_redirect(browser: Browser) -> None:
    for params in (
        {"client_id": "nobody"},
        {"redirect_uri": "https://evil.example/cb"},
        {"redirect_uri": CB + "/"},
        {"redirect_uri": ""},
    ):
        response = await browser.authorize("web", **params)
        assert response.status_code == 400, params
        assert "location" not in response.headers
        assert response.headers["content-type"].startswith("text/html")
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


async def test_other_errors_go_back_with_state_and_iss(browser: Browser) -> None:
    for params, error in (
        ({"response_type": "token"}, "unsupported_response_type"),
        ({"scope": "openid admin"}, "invalid_scope"),
        ({"prompt": "none login"}, "invalid_request"),
        ({"request": "eyJ.x.y"}, "request_not_supported"),
    ):
        response = await browser.authorize("web", state="s1", **params)
        assert response.status_code == 303, params
        answer = query(response.headers["location"])
        assert (answer["error"], answer["state"], answer["iss"]) == (error, "s1", ISSUER), params


async def test_prompt_none_without_a_session_is_login_required(browser: Browser) -> None:
    response = await browser.authorize("web", prompt="none", state="quiet")
    answer = query(response.headers["location"])
    assert (answer["error"], answer["state"], answer["iss"]) == ("login_required", "quiet", ISSUER)


async def test_a_public_client_refresh_token_is_bound_to_its_certificate(
    browser: Browser, harness: Harness
) -> None:
    code, _ = await browser.code("native", scope="openid offline_access")
    tokens = await browser.exchange("native", code, cert="svc")
    assert tokens.status_code == 200, tokens.text
    refresh = tokens.json()["refresh_token"]
    form = {"grant_type": "refresh_token", "refresh_token": refresh}
    for cert in (None, "other"):
        refused = await token_request(harness, "native", form, cert=cert)
        assert refused.status_code == 400, cert
        assert refused.json()["error"] == "invalid_grant", cert
    renewed = await token_request(harness, "native", form, cert="svc")  # still usable by its holder
    assert renewed.status_code == 200, renewed.text


async def test_a_refresh_token_bound_to_a_certificate_found_revoked_is_refused(
    browser: Browser, harness: Harness
) -> None:
    """Issue 16: once certbound learns a certificate is revoked (here: another node wrote it to the
    cert_status table, which this worker polls), the refresh tokens bound to it stop working too."""
    code, _ = await browser.code("native", scope="openid offline_access")
    tokens = await browser.exchange("native", code, cert="svc")
    assert tokens.status_code == 200, tokens.text
    form = {"grant_type": "refresh_token", "refresh_token": tokens.json()["refresh_token"]}
    leaf = harness.pki.certs["svc"].leaf
    now = datetime.now(UTC)
    record = CertificateRecord(
        x5t_s256=harness.pki.certs["svc"].x5t_s256,
        client_id=None,
        subject=leaf.subject.rfc4514_string(),
        issuer=leaf.issuer.rfc4514_string(),
        serial=format(leaf.serial_number, "x"),
        not_after=leaf.not_valid_after_utc,
        chain_pem=cert_to_pem(leaf).decode("ascii"),
        first_seen=now,
        last_seen=now,
        revoked_at=now,
        revocation_reason="keyCompromise",
        revocation_source="ocsp http://ocsp.example/",
        learned_at=now,
    )
    await CertStatusStore(harness.store.engine).record([record])
    assert await harness.services.certificates.poll() == 1
    refused = await token_request(harness, "native", form, cert="svc")
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"] == "invalid_grant"


async def test_a_bound_public_client_gets_bound_tokens_and_userinfo_wants_the_certificate(
    browser: Browser, harness: Harness
) -> None:
    code, _ = await browser.code("native-bound", scope="openid offline_access")
    body = (await browser.exchange("native-bound", code, cert="other")).json()
    access = body["access_token"]
    assert jwt_claims(access)["cnf"] == {"x5t#S256": harness.pki.certs["other"].x5t_s256}
    without = await userinfo(harness, access)
    assert without.status_code == 401
    assert 'error="invalid_token"' in without.headers["www-authenticate"]
    wrong = await userinfo(harness, access, cert="svc")
    assert wrong.status_code == 401
    right = await userinfo(harness, access, cert="other")
    assert right.status_code == 200
    assert right.json()["sub"] == "sub-alice"


async def test_another_clients_refresh_token_is_refused(browser: Browser, harness: Harness) -> None:
    code, _ = await browser.code("web", scope="openid offline_access")
    refresh = (await browser.exchange("web", code)).json()["refresh_token"]
    stolen = await token_request(harness, "native", {"grant_type": "refresh_token", "refresh_token": refresh})
    assert stolen.status_code == 400
    assert stolen.json()["error"] == "invalid_grant"
    mine = await token_request(harness, "web", {"grant_type": "refresh_token", "refresh_token": refresh})
    assert mine.status_code == 200  # the refusal revoked nothing


async def test_revoking_a_refresh_token_revokes_the_grant(browser: Browser, harness: Harness) -> None:
    code, _ = await browser.code("web", scope="openid offline_access")
    body = (await browser.exchange("web", code)).json()
    assert (await harness.revoke("web", body["refresh_token"])).status_code == 200
    assert (await harness.introspect("web", body["access_token"])).json() == {"active": False}
    again = await token_request(
        harness, "web", {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    )
    assert again.json()["error"] == "invalid_grant"


async def test_userinfo_needs_an_openid_token(browser: Browser, harness: Harness) -> None:
    missing = await harness.http.get("/userinfo")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == "Bearer"
    service_token = await harness.get_token("svc")
    refused = await userinfo(harness, service_token)
    assert refused.status_code == 403
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    code, _ = await browser.code("web", scope="openid")
    access = (await browser.exchange("web", code)).json()["access_token"]
    posted = await harness.http.post("/userinfo", headers={"authorization": f"Bearer {access}"})
    assert posted.json() == {"sub": "sub-alice"}  # openid alone: the subject only
    await harness.store.users.update("alice", enabled=False)
    assert (await userinfo(harness, access)).status_code == 401


async def test_id_tokens_are_signed_as_the_client_registered(browser: Browser, harness: Harness) -> None:
    """RS256 unless the client registered id_token_signed_response_alg (here ES256)."""
    code, _ = await browser.code("es256")
    body = (await browser.exchange("es256", code)).json()
    claims = verify_id_token(harness, body["id_token"], alg="ES256")
    assert claims["at_hash"] == left_hash(body["access_token"], "ES256")


async def test_userinfo_takes_an_openid_token_whatever_its_audience(
    browser: Browser, harness: Harness
) -> None:
    code, _ = await browser.code("web", resource=API)
    access = (await browser.exchange("web", code)).json()["access_token"]
    assert jwt_claims(access)["aud"] == API
    assert (await userinfo(harness, access)).status_code == 200


async def test_pushed_requests_can_be_required_server_wide(tmp_path: Any, pki: Any) -> None:
    from tests.server.endpoints.harness import STANDARD_CLIENTS, build_harness, settings
    from tests.server.login.flow import LOGIN_CLIENTS

    h = await build_harness(
        f"sqlite:///{tmp_path / 'par.db'}",
        pki=pki,
        settings_=settings(require_pushed_authorization_requests=True),
        clients={**STANDARD_CLIENTS, **LOGIN_CLIENTS},
    )
    try:
        response = await Browser(h, h.http).authorize("web", state="s")
        answer = query(response.headers["location"])
        assert (answer["error"], answer["state"]) == ("invalid_request", "s")
        document = (await h.http.get("/.well-known/openid-configuration")).json()
        assert document["require_pushed_authorization_requests"] is True
    finally:
        await h.close()
