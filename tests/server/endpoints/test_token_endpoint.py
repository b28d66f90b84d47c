"""The token endpoint with client_credentials: formats, scope, resource, binding, errors, headers."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet
from sqlalchemy import func, select

from certbound.server.tokens.access_token import token_digest
from certbound.store.schema import opaque_tokens
from tests.server.endpoints.harness import API, ISSUER, OTHER_API, Harness

CC = {"grant_type": "client_credentials"}


def assert_no_store(response: Any) -> None:
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["pragma"] == "no-cache"


def decode_verified(h: Harness, token_value: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Header and claims of a JWT verified against the server's published JWKS."""
    from datetime import UTC, datetime

    keyset = KeySet.import_key_set(h.keys.current().jwks(datetime.now(UTC)))  # type: ignore[arg-type]
    decoded = jwt.decode(token_value, keyset, algorithms=["ES256"])
    return dict(decoded.header), dict(decoded.claims)


def segment(token_value: str, index: int) -> dict[str, Any]:
    part = token_value.split(".")[index]
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return result


async def test_jwt_access_token(harness: Harness) -> None:
    response = await harness.post("/token", "svc", CC)
    assert response.status_code == 200
    assert_no_store(response)
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["scope"] == "read write"
    header, claims = decode_verified(harness, body["access_token"])
    assert header["typ"] == "at+jwt"
    assert header["kid"] == harness.keys.current().active().kid
    assert claims["iss"] == ISSUER
    assert claims["sub"] == claims["client_id"] == "svc"
    assert claims["aud"] == ISSUER  # no resource, no default_audience
    assert claims["exp"] - claims["iat"] == 600
    assert claims["scope"] == "read write"
    assert isinstance(claims["jti"], str)
    assert len(claims["jti"]) >= 22
    assert "cnf" not in claims


async def test_opaque_access_token_is_stored_hashed(harness: Harness) -> None:
    response = await harness.post("/token", "opaque", CC)
    assert response.status_code == 200, response.text
    value = response.json()["access_token"]
    assert "." not in value
    assert len(value) == 43
    async with harness.store.engine.connect() as conn:
        rows = (await conn.execute(select(opaque_tokens))).all()
    assert len(rows) == 1
    assert rows[0].token_sha256 == token_digest(value).hex()
    assert value not in json.dumps(rows[0].claims)
    assert rows[0].claims["client_id"] == "opaque"


async def test_opaque_by_setting(tmp_path: Any, pki: Any) -> None:
    from tests.server.endpoints.harness import build_harness, settings

    h = await build_harness(
        f"sqlite:///{tmp_path / 'o.db'}", pki=pki, settings_=settings(access_token_format="opaque")
    )
    try:
        assert "." not in await h.get_token("svc")
    finally:
        await h.close()


@pytest.mark.parametrize(
    ("requested", "granted"),
    [("read", "read"), ("write read", "write read"), ("read read", "read"), (None, "read write")],
)
async def test_scope_subset_and_default(harness: Harness, requested: str | None, granted: str) -> None:
    form = dict(CC) if requested is None else {**CC, "scope": requested}
    response = await harness.post("/token", "svc", form)
    assert response.status_code == 200
    assert response.json()["scope"] == granted
    assert segment(response.json()["access_token"], 1)["scope"] == granted


async def test_no_registered_scope_gives_no_scope(harness: Harness) -> None:
    response = await harness.post("/token", "noscope", CC)
    assert response.status_code == 200
    assert "scope" not in response.json()
    assert "scope" not in segment(response.json()["access_token"], 1)


@pytest.mark.parametrize("scope", ["admin", "read admin", 'read "x"'])
async def test_invalid_scope(harness: Harness, scope: str) -> None:
    response = await harness.post("/token", "svc", {**CC, "scope": scope})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_scope"
    assert_no_store(response)


async def test_scope_catalogue_narrows_registered_scopes(tmp_path: Any, pki: Any) -> None:
    from tests.server.endpoints.harness import build_harness, settings

    h = await build_harness(
        f"sqlite:///{tmp_path / 'c.db'}", pki=pki, settings_=settings(allowed_scopes=["read"])
    )
    try:
        response = await h.post("/token", "svc", CC)
        assert response.json()["scope"] == "read"
        response = await h.post("/token", "svc", {**CC, "scope": "write"})
        assert response.json()["error"] == "invalid_scope"
    finally:
        await h.close()


async def test_resource_becomes_audience(harness: Harness) -> None:
    response = await harness.post("/token", "svc", {**CC, "resource": API})
    assert response.status_code == 200
    assert segment(response.json()["access_token"], 1)["aud"] == API


async def test_default_audience_setting(tmp_path: Any, pki: Any) -> None:
    from tests.server.endpoints.harness import build_harness, settings

    h = await build_harness(
        f"sqlite:///{tmp_path / 'd.db'}", pki=pki, settings_=settings(default_audience="urn:example:default")
    )
    try:
        assert segment(await h.get_token("svc"), 1)["aud"] == "urn:example:default"
    finally:
        await h.close()


@pytest.mark.parametrize(
    "resources",
    [
        ["https://unregistered.example"],
        ["not a uri"],
        [API + "#fragment"],
        ["relative/path"],
        [API, OTHER_API],  # one audience per token
    ],
)
async def test_invalid_target(harness: Harness, resources: list[str]) -> None:
    form = [("grant_type", "client_credentials"), *(("resource", r) for r in resources)]
    response = await harness.post("/token", "svc", form)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"
    assert_no_store(response)


async def test_resource_for_client_without_registered_resources(harness: Harness) -> None:
    response = await harness.post("/token", "noscope", {**CC, "resource": API})
    assert response.json()["error"] == "invalid_target"


async def test_grant_not_registered_is_unauthorized_client(harness: Harness) -> None:
    response = await harness.post("/token", "nogrant", CC)
    assert response.status_code == 400
    assert response.json()["error"] == "unauthorized_client"


async def test_missing_grant_type(harness: Harness) -> None:
    response = await harness.post("/token", "svc", {"scope": "read"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "grant_type" in response.json()["error_description"]


async def test_empty_grant_type_counts_as_missing(harness: Harness) -> None:
    response = await harness.post("/token", "svc", {"grant_type": ""})
    assert response.json()["error"] == "invalid_request"


@pytest.mark.parametrize("grant_type", ["password", "implicit", "urn:x"])
async def test_unsupported_grant_type(harness: Harness, grant_type: str) -> None:
    response = await harness.post("/token", "svc", {"grant_type": grant_type})
    assert response.status_code == 400
    assert response.json()["error"] == "unsupported_grant_type"


async def test_repeated_parameter(harness: Harness) -> None:
    form = [("grant_type", "client_credentials"), ("scope", "read"), ("scope", "write")]
    response = await harness.post("/token", "svc", form)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert "scope" in response.json()["error_description"]
    assert_no_store(response)


async def test_unauthenticated_client(harness: Harness) -> None:
    response = await harness.http.post("/token", data=CC, headers=Harness.basic("svc", "wrong"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert "www-authenticate" in response.headers
    assert_no_store(response)


async def test_get_is_405_with_json_and_no_store(harness: Harness) -> None:
    for method in ("GET", "PUT", "DELETE", "PATCH", "OPTIONS"):
        response = await harness.http.request(method, "/token")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert response.json()["error"] == "invalid_request"
        assert_no_store(response)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"grant_type":"client_credentials"}'),
        ("text/plain", b"grant_type=client_credentials"),
        ("multipart/form-data; boundary=x", b"--x--"),
        (None, b"grant_type=client_credentials"),
    ],
)
async def test_wrong_content_type(harness: Harness, content_type: str | None, body: bytes) -> None:
    headers = Harness.basic("svc")
    if content_type:
        headers["content-type"] = content_type
    response = await harness.http.post("/token", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert_no_store(response)


async def test_form_content_type_with_charset(harness: Harness) -> None:
    headers = {**Harness.basic("svc"), "content-type": "application/x-www-form-urlencoded; charset=UTF-8"}
    response = await harness.http.post("/token", content=b"grant_type=client_credentials", headers=headers)
    assert response.status_code == 200


async def test_bound_token_carries_certificate_thumbprint(harness: Harness) -> None:
    response = await harness.post("/token", "bound", CC)
    assert response.status_code == 200, response.text
    _, claims = decode_verified(harness, response.json()["access_token"])
    assert claims["cnf"] == {"x5t#S256": harness.pki.certs["bound"].x5t_s256}
    assert response.json()["token_type"] == "Bearer"


async def test_bound_token_whatever_the_method(harness: Harness) -> None:
    """A client authenticated by a secret binds to the certificate presented on the connection."""
    response = await harness.post("/token", "bound-secret", CC, cert="other")
    assert response.status_code == 200, response.text
    claims = segment(response.json()["access_token"], 1)
    assert claims["cnf"]["x5t#S256"] == harness.pki.certs["other"].x5t_s256


async def test_bound_client_without_certificate_gets_no_token(harness: Harness) -> None:
    response = await harness.post("/token", "bound-secret", CC)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "invalid_grant"
    assert "certificate" in body["error_description"]
    assert "access_token" not in body
    assert_no_store(response)


async def test_bound_opaque_client_without_certificate_stores_nothing(tmp_path: Any, pki: Any) -> None:
    from tests.server.endpoints.harness import build_harness, settings

    h = await build_harness(
        f"sqlite:///{tmp_path / 'b.db'}", pki=pki, settings_=settings(access_token_format="opaque")
    )
    try:
        response = await h.post("/token", "bound-secret", CC)
        assert response.json()["error"] == "invalid_grant"
        async with h.store.engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(opaque_tokens)) == 0
    finally:
        await h.close()


async def test_unbound_client_presenting_certificate_gets_unbound_token(harness: Harness) -> None:
    claims = segment(await harness.get_token("svc", cert="svc"), 1)
    assert "cnf" not in claims
