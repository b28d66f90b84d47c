"""The malformed-input sweep against `certbound gateway` (the session's gateway in front of both
identity providers): hostile Authorization headers, token-shaped garbage (bad segments, headers, alg,
nested JSON), forwarded-certificate headers and odd paths and queries, with and without a client
certificate. Never a 5xx, a refusal is RFC 6750 (a 401 with its challenge), and no traceback in the
gateway's log. Profile ``malformed-sweep`` (tests/faults/sweep.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.client.material import Material
from tests.faults.sweep import SWEEP, LogTail, assert_no_server_failure, authorization_headers, hostile_text
from tests.faults.sweep import jwt_assertions as token_shapes
from tests.gateway.gatewayproc import RunningGateway

pytestmark = pytest.mark.slow

#: Routes whose upstream and IdP are up: any 5xx there is the gateway's fault.
ROUTES = [
    "/certbound/strict",
    "/certbound/optional",
    "/certbound/bearer",
    "/certbound/introspect",
    "/oidc/strict",
    "/oidc/bearer",
    "/oidc/introspect",
    "/hidden",
]


@pytest.fixture(scope="module")
def clients(gateway: RunningGateway, material: Material) -> Iterator[dict[str, httpx.Client]]:
    made = {"none": gateway.client(), "cert": gateway.client(material.tls_client)}
    yield made
    for client in made.values():
        client.close()


@pytest.fixture(scope="module")
def tail(gateway: RunningGateway) -> LogTail:
    return LogTail(Path(gateway.log_path))


@st.composite
def authorizations(draw: st.DrawFn) -> str | None:
    kind = draw(st.sampled_from(["none", "basic", "bearer-text", "bearer-jwt", "scheme", "huge"]))
    if kind == "none":
        return None
    if kind == "basic":
        return draw(authorization_headers)
    if kind == "bearer-text":
        return "Bearer " + draw(hostile_text)
    if kind == "bearer-jwt":
        return "Bearer " + draw(token_shapes("https://api.example", "demo-client"))
    if kind == "huge":
        return "Bearer " + "a" * draw(st.sampled_from([5000, 60_000]))
    return draw(st.sampled_from(["Bearer", "bearer  x y", "DPoP x", "Bearer\tx", "Token x", "Bearer ====="]))


@SWEEP
@given(
    route=st.sampled_from(ROUTES),
    authorization=authorizations(),
    cert=st.sampled_from(["none", "cert"]),
    suffix=hostile_text,
    forwarded=st.sampled_from(["", "x-ssl-client-cert", "client-cert", "x-forwarded-client-cert"]),
    method=st.sampled_from(["GET", "POST", "DELETE"]),
)
def test_hostile_requests_through_the_gateway(
    clients: dict[str, httpx.Client],
    gateway: RunningGateway,
    tail: LogTail,
    route: str,
    authorization: str | None,
    cert: str,
    suffix: str,
    forwarded: str,
    method: str,
) -> None:
    headers = {}
    if authorization is not None:
        headers["authorization"] = authorization
    if forwarded:
        headers[forwarded] = quote(
            ("-----BEGIN CERTIFICATE-----\nMIIB" + suffix[:20]).encode("utf-8", "surrogatepass")
        )
    path = route + "/" + quote(suffix.encode("utf-8", "surrogatepass"), safe="")
    try:
        response = clients[cert].request(method, gateway.url + path, headers=headers, content=b"x=1")
    except (httpx.LocalProtocolError, UnicodeEncodeError, ValueError):
        return  # httpx would not send it
    assert response.status_code < 500, (response.status_code, response.text[:300])
    if response.status_code == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert_no_server_failure(tail.new())
