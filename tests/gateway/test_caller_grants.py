"""Callers that send credentials instead of a token (``client_credentials``, ``password``): the gateway
obtains the token at the real IdP, caches it by a salted hash of the credentials (one token request
for many calls), and forwards the request with the token, never with the credentials. Basic
credentials are decoded as RFC 6749 section 2.3.1 says; ``*_param_type`` decide where they are read.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote_plus, urlencode

import httpx
import pytest

from tests.client.material import Material
from tests.gateway.echo import Echo
from tests.gateway.idps import wait_until
from tests.gateway.login_world import (
    CALLER_ID,
    CALLER_SECRET,
    CLIENT_ID,
    USER,
    USER_PASSWORD,
    LoginIdp,
    World,
    world_fixture,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(material: Material, echo: Echo, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from world_fixture(material, echo, tmp_path_factory.mktemp("gateway-grants"))


@pytest.fixture(params=["certbound", "oidc"])
def idp(request: pytest.FixtureRequest, world: World) -> LoginIdp:
    found: LoginIdp = world.idps[request.param]
    return found


def basic(name: str, secret: str) -> str:
    """RFC 6749 section 2.3.1: each part form-urlencoded, joined by a colon, then Base64."""
    pair = f"{quote_plus(name, safe='')}:{quote_plus(secret, safe='')}"
    return "Basic " + base64.b64encode(pair.encode()).decode()


def upstream_saw(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    return {name.lower(): value for name, value in response.json()["headers"]}


def token_requests(idp: LoginIdp, client_id: str) -> list[dict[str, Any]]:
    return [r for r in idp.requests("token") if r.get("client_id") == client_id]


def test_client_credentials_one_token_request_for_many_calls(world: World, idp: LoginIdp) -> None:
    before = len(token_requests(idp, CALLER_ID))
    tokens = set()
    with world.gateway.client() as http:
        for n in range(5):
            answer = http.get(f"{world.gateway.url}/{idp.name}/cc/call-{n}",
                              headers={"Authorization": basic(CALLER_ID, CALLER_SECRET)})  # fmt: skip
            seen = upstream_saw(answer)
            assert seen["authorization"].startswith("Bearer ")  # the token, never the caller's secret
            assert seen["x-client-id"] == CALLER_ID
            tokens.add(seen["authorization"])
    assert len(tokens) == 1
    assert len(token_requests(idp, CALLER_ID)) - before == 1
    calls = lambda: world.gateway.events(lambda e: f"/{idp.name}/cc/call-" in e.get("path", ""))  # noqa: E731
    wait_until(lambda: len(calls()) == 5)  # each event is written once its answer has gone
    events = calls()
    assert [e["cached"] for e in events[-5:]] == [False, True, True, True, True]
    assert {e["token_source"] for e in events} == {"client_credentials"}


def test_client_credentials_from_the_form_body_and_the_body_goes_up_without_them(
    world: World, idp: LoginIdp
) -> None:
    """Review 14: the form went upstream whole, the caller's client_secret with it."""
    body = urlencode({"client_id": CALLER_ID, "client_secret": CALLER_SECRET, "note": "kept"}).encode()
    with world.gateway.client() as http:
        answer = http.post(f"{world.gateway.url}/{idp.name}/cc/form", content=body,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert upstream_saw(answer)["authorization"].startswith("Bearer ")
    rest = urlencode({"note": "kept"}).encode()  # the rest of the form goes on, its length told right
    assert (answer.json()["body_length"], answer.json()["body_sha256"]) == (
        len(rest), hashlib.sha256(rest).hexdigest())  # fmt: skip
    assert int(upstream_saw(answer)["content-length"]) == len(rest)


def test_a_password_in_the_form_body_does_not_go_upstream(world: World) -> None:
    body = urlencode({"username": USER, "password": USER_PASSWORD}).encode()
    with world.gateway.client() as http:
        answer = http.post(f"{world.gateway.url}/oidc/both/pw-form", content=body,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert upstream_saw(answer)["x-subject"] == USER
    assert answer.json()["body_length"] == 0


@pytest.mark.parametrize(
    ("authorization", "status", "reason"),
    [
        (basic(CALLER_ID, "wrong secret"), 401, "credentials.refused"),
        ("Basic !!!not-base64", 400, "credentials.malformed"),
        ("Basic " + base64.b64encode(b"no-colon").decode(), 400, "credentials.malformed"),
        (None, 401, "token.missing"),
    ],
)
def test_bad_or_refused_credentials(
    world: World, idp: LoginIdp, authorization: str | None, status: int, reason: str
) -> None:
    marker = f"/{idp.name}/cc/bad-{status}-{reason}"
    headers = {"Authorization": authorization} if authorization else {}
    with world.gateway.client() as http:
        answer = http.get(world.gateway.url + marker, headers=headers)
    assert answer.status_code == status
    assert answer.headers["www-authenticate"].startswith('Bearer realm="')
    assert world.gateway.event_for(marker)["reason"] == reason
    assert not world.echo.reached(marker)


def test_password_with_the_gateways_own_client_over_mtls(world: World) -> None:
    idp = world.idps["oidc"]
    before = len(token_requests(idp, CLIENT_ID))
    with world.gateway.client() as http:
        first = http.get(
            f"{world.gateway.url}/oidc/pw/a", headers={"Authorization": basic(USER, USER_PASSWORD)}
        )
        second = http.get(
            f"{world.gateway.url}/oidc/pw/b", headers={"Authorization": basic(USER, USER_PASSWORD)}
        )
        wrong = http.get(f"{world.gateway.url}/oidc/pw/c", headers={"Authorization": basic(USER, "guess")})
    assert upstream_saw(first)["x-subject"] == USER
    assert upstream_saw(first)["authorization"] == upstream_saw(second)["authorization"]
    assert wrong.status_code == 401
    calls = token_requests(idp, CLIENT_ID)[before:]
    assert [c["grant_type"] for c in calls] == ["password", "password"]  # the second call was cached
    assert {c["cert_x5t_s256"] for c in calls} == {world.material.gateway.thumbprint}
    with idp.oauth() as oauth:  # bound to the gateway's certificate
        token = upstream_saw(first)["authorization"].removeprefix("Bearer ")
        assert oauth.introspect(token).data["cnf"]["x5t#S256"] == world.material.gateway.thumbprint


def test_param_types_decide_between_the_two_methods(world: World) -> None:
    """client_credentials reads the Basic header, password the form: the same header is never both."""
    with world.gateway.client() as http:
        by_header = http.get(f"{world.gateway.url}/oidc/both/h",
                             headers={"Authorization": basic(CALLER_ID, CALLER_SECRET)})  # fmt: skip
        by_form = http.post(f"{world.gateway.url}/oidc/both/f",
                            content=urlencode({"username": USER, "password": USER_PASSWORD}),
                            headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
        user_in_header = http.get(f"{world.gateway.url}/oidc/both/u",
                                  headers={"Authorization": basic(USER, USER_PASSWORD)})  # fmt: skip
    assert upstream_saw(by_header)["x-client-id"] == CALLER_ID
    assert upstream_saw(by_form)["x-subject"] == USER
    assert user_in_header.status_code == 401  # read as client credentials: the IdP knows no client 'pat'
    assert world.gateway.event_for("/oidc/both/u")["reason"] == "credentials.refused"
