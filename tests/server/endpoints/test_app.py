"""The app `create_app` builds from `Services`: every endpoint of the table routed, the metadata
document from the registries, and the app-level errors through the one renderer."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from certbound.auth_methods import METHODS
from certbound.server.app import create_app
from certbound.server.grants import GrantRegistry, GrantRequest
from certbound.server.grants.types import Grant
from certbound.server.paths import ENDPOINTS, METADATA_PATHS
from certbound.server.tokens.access_token import CurrentKeys
from tests.observability.conftest import logging_to
from tests.server.endpoints.harness import ISSUER, Harness, Pki, build_harness, settings

#: The document, byte for byte: the table's and the registries' (the login flows' endpoints and fields too).
METADATA = (
    b'{"issuer":"https://as.example","authorization_endpoint":"https://as.example/authorize","token_endpoi'
    b'nt":"https://as.example/token","introspection_endpoint":"https://as.example/introspect","revocation_'
    b'endpoint":"https://as.example/revoke","jwks_uri":"https://as.example/jwks","registration_endpoint":"'
    b'https://as.example/register","pushed_authorization_request_endpoint":"https://as.example/par","useri'
    b'nfo_endpoint":"https://as.example/userinfo","end_session_endpoint":"https://as.example/logout","gran'
    b't_types_supported":["client_credentials","authorization_code","refresh_token"],"response_types_suppo'
    b'rted":["code"],"response_modes_supported":["query"],"scopes_supported":["openid","profile","email","'
    b'offline_access","read","write"],"subject_types_supported":["public"],"id_token_signing_alg_values_su'
    b'pported":["RS256","ES256"],"userinfo_signing_alg_values_supported":["RS256","ES256"],"claims_support'
    b'ed":["sub","iss","aud","exp","iat","auth_time","nonce","at_hash","sid","name","given_name","family_n'
    b'ame","preferred_username","email","email_verified"],"prompt_values_supported":["none","login","conse'
    b'nt"],"authorization_response_iss_parameter_supported":true,"require_pushed_authorization_requests":f'
    b'alse,"request_parameter_supported":false,"request_uri_parameter_supported":false,"claims_parameter_s'
    b'upported":false,"token_endpoint_auth_methods_supported":["none","client_secret_basic","client_secret'
    b'_post","client_secret_jwt","private_key_jwt","tls_client_auth","self_signed_tls_client_auth"],"token'
    b'_endpoint_auth_signing_alg_values_supported":["ES256","ES384","ES512","PS256","PS384","PS512","RS256'
    b'","RS384","RS512","EdDSA","HS256","HS384","HS512"],"introspection_endpoint_auth_methods_supported":['
    b'"none","client_secret_basic","client_secret_post","client_secret_jwt","private_key_jwt","tls_client_'
    b'auth","self_signed_tls_client_auth"],"introspection_endpoint_auth_signing_alg_values_supported":["ES'
    b'256","ES384","ES512","PS256","PS384","PS512","RS256","RS384","RS512","EdDSA","HS256","HS384","HS512"'
    b'],"revocation_endpoint_auth_methods_supported":["none","client_secret_basic","client_secret_post","c'
    b'lient_secret_jwt","private_key_jwt","tls_client_auth","self_signed_tls_client_auth"],"revocation_end'
    b'point_auth_signing_alg_values_supported":["ES256","ES384","ES512","PS256","PS384","PS512","RS256","R'
    b'S384","RS512","EdDSA","HS256","HS384","HS512"],"introspection_signing_alg_values_supported":["ES256"'
    b'],"tls_client_certificate_bound_access_tokens":true,"mtls_endpoint_aliases":{"token_endpoint":"https'
    b'://mtls.as.example/token","introspection_endpoint":"https://mtls.as.example/introspect","revocation_'
    b'endpoint":"https://mtls.as.example/revoke","pushed_authorization_request_endpoint":"https://mtls.as.'
    b'example/par","userinfo_endpoint":"https://mtls.as.example/userinfo"},"code_challenge_methods_support'
    b'ed":["S256"]}'
)


@pytest.fixture
async def scoped(tmp_path: Path, pki: Pki) -> AsyncIterator[Harness]:
    """A server with a scope catalogue (given out of order: the document sorts it)."""
    h = await build_harness(
        f"sqlite:///{tmp_path / 'certbound.db'}",
        pki=pki,
        settings_=settings(allowed_scopes=["write", "read"]),
    )
    yield h
    await h.close()


@pytest.mark.parametrize("path", METADATA_PATHS)
async def test_metadata_document_is_what_it_was(scoped: Harness, path: str) -> None:
    response = await scoped.http.get(path)
    assert response.status_code == 200
    assert response.content == METADATA
    assert response.headers.raw == [
        (b"cache-control", b"public, max-age=300"),
        (b"content-length", b"2813"),
        (b"content-type", b"application/json"),
    ]


class _Extra:
    """A grant type only this test registers."""

    grant_type = "urn:example:extra"

    async def handle(self, request: GrantRequest) -> Any:
        raise NotImplementedError


async def test_metadata_lists_come_from_the_registries(harness: Harness) -> None:
    assert harness.services.authenticator.methods == METHODS
    grants: list[Grant] = [_Extra()]
    app = create_app(dataclasses.replace(harness.services, grants=GrantRegistry(grants)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=ISSUER) as http:
        doc = (await http.get(METADATA_PATHS[0])).json()
    assert doc["grant_types_supported"] == ["urn:example:extra"]
    for kind in ("token", "introspection", "revocation"):
        assert doc[f"{kind}_endpoint_auth_methods_supported"] == list(METHODS)


def test_every_endpoint_of_the_table_is_routed(harness: Harness) -> None:
    routes = {r.path: r for r in harness.app.routes if isinstance(r, Route)}
    assert set(routes) == {path for entry in ENDPOINTS for path in entry.paths}
    for entry in ENDPOINTS:
        for path in entry.paths:
            methods = entry.methods
            expected = None if methods is None else {*methods, *(["HEAD"] if "GET" in methods else [])}
            assert routes[path].methods == expected, path
    hot = harness.app.hot_routes
    assert hot is not None
    assert sorted(hot.routes) == sorted(e.path for e in ENDPOINTS if e.hot)


async def test_jwks_is_the_rings(harness: Harness) -> None:
    response = await harness.http.get("/jwks")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=60"
    assert response.headers["content-type"] == "application/jwk-set+json"
    kids = [key["kid"] for key in response.json()["keys"]]
    assert harness.keys.current().active().kid in kids


async def test_unknown_path_and_method_are_json(harness: Harness) -> None:
    response = await harness.http.get("/nope")
    assert response.status_code == 404
    assert response.headers.raw == [
        (b"cache-control", b"no-store"),
        (b"pragma", b"no-cache"),
        (b"content-length", b"53"),
        (b"content-type", b"application/json"),
    ]
    assert response.content == b'{"error":"not_found","error_description":"Not Found"}'
    response = await harness.http.post("/jwks")
    assert response.status_code == 405
    assert set(response.headers["allow"].split(", ")) == {"GET", "HEAD"}  # a set: any order
    assert response.headers["cache-control"] == "no-store"
    assert response.content == b'{"error":"invalid_request","error_description":"Method Not Allowed"}'


async def test_unhandled_error_is_a_logged_500(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(self: CurrentKeys) -> None:
        raise RuntimeError("the store went away")

    monkeypatch.setattr(CurrentKeys, "ring", broken)
    transport = httpx.ASGITransport(app=harness.app, raise_app_exceptions=False)
    stream = io.StringIO()
    with logging_to(stream):
        async with httpx.AsyncClient(transport=transport, base_url=ISSUER) as http:
            response = await http.get("/jwks")
    assert response.status_code == 500
    assert response.content == b'{"error":"server_error"}'
    assert response.headers["cache-control"] == "no-store"
    events = [json.loads(line) for line in stream.getvalue().splitlines()]
    ours = [(e["level"], e["event"]) for e in events if e.get("logger") == "certbound"]
    assert ours == [("error", "unhandled error on GET /jwks: RuntimeError")]
