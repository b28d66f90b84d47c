"""Signed UserInfo responses (OpenID Connect Core section 5.3.2): a client registered with
``userinfo_signed_response_alg`` gets a JWT signed with that algorithm, with ``iss`` and ``aud``; the
others get JSON; registration accepts only what the server offers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from certbound.errors import OAuthError
from certbound.server.clients.metadata import validate_client_metadata
from tests.server.endpoints.harness import ISSUER, Harness, client_record
from tests.server.login.flow import CB, Browser


async def registered(h: Harness, client_id: str, metadata: dict[str, object]) -> None:
    await h.store.create_client(client_record(client_id, metadata))
    async with asyncio.timeout(10):
        while await h.services.checker.clients(client_id) is None:
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
async def test_a_client_that_asked_gets_a_signed_userinfo_jwt(
    browser: Browser, harness: Harness, alg: str
) -> None:
    await registered(harness, "signed", {
        "grant_types": ["authorization_code"], "redirect_uris": [CB], "consent_required": False,
        "userinfo_signed_response_alg": alg,
    })  # fmt: skip
    code, _ = await browser.code("signed", scope="openid email")
    access = (await browser.exchange("signed", code)).json()["access_token"]
    response = await harness.http.get("/userinfo", headers={"authorization": f"Bearer {access}"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/jwt"
    assert response.headers["cache-control"] == "no-store"
    keyset = KeySet.import_key_set(harness.keys.current().jwks(datetime.now(UTC)))  # type: ignore[arg-type]
    decoded = jwt.decode(response.text, keyset, algorithms=[alg])
    assert decoded.header["alg"] == alg
    expected = {"sub": "sub-alice", "email": "alice@example.com", "email_verified": True}
    assert decoded.claims == expected | {"iss": ISSUER, "aud": "signed"}
    document = (await harness.http.get("/.well-known/openid-configuration")).json()
    assert alg in document["userinfo_signing_alg_values_supported"]


async def test_other_clients_get_json(browser: Browser, harness: Harness) -> None:
    code, _ = await browser.code("es256", scope="openid")
    access = (await browser.exchange("es256", code)).json()["access_token"]
    response = await harness.http.get("/userinfo", headers={"authorization": f"Bearer {access}"})
    assert response.headers["content-type"].startswith("application/json")
    assert response.json() == {"sub": "sub-alice"}


@pytest.mark.parametrize("alg", ["HS256", "none", "PS512"])
def test_registration_refuses_an_algorithm_not_offered(alg: str) -> None:
    raw = {"grant_types": ["authorization_code"], "redirect_uris": [CB], "userinfo_signed_response_alg": alg}
    with pytest.raises(OAuthError) as err:
        validate_client_metadata(raw)
    assert err.value.description.startswith("userinfo_signed_response_alg: ")
