"""Dynamic registration (RFC 7591) and client configuration (RFC 7592) through the HTTP endpoints,
on a real store (SQLite and PostgreSQL), with certificates and keys made by certbound.pki."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from certbound.jsontext import is_text
from certbound.pki.dn import dn_to_rfc4514
from certbound.pki.jwk import jwk_with_x5c
from certbound.pki.thumbprint import x5t_s256
from certbound.sealing import Sealer, SealingError
from certbound.server.clients.registrar import Registrar
from certbound.store.records import Client
from certbound.store.sql import SqlStore
from tests.server.clients.conftest import (
    INITIAL_TOKEN,
    REGISTRATION_BASE_URL,
    Pki,
    bearer,
    register,
    serving,
    stored_rows,
)
from tests.server.clients.test_metadata import INVALID, REDIRECT_INVALID


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


async def assert_nothing_stored(store: SqlStore) -> None:
    client_rows, cred_rows = await stored_rows(store)
    assert client_rows == []
    assert cred_rows == []


def kinds(client: Client) -> list[str]:
    return sorted(c.kind for c in client.credentials)


# --- every method registers --------------------------------------------------------------------------

MetadataOf = Callable[[Pki], dict[str, Any]]

METHODS: list[tuple[str, MetadataOf, list[str]]] = [
    # (id, metadata, the credential kinds stored)
    (
        "none",
        lambda p: {
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "redirect_uris": ["https://app.example/cb"],
        },
        [],
    ),
    ("client_secret_basic (default)", lambda p: {"client_name": "defaults"}, ["secret_sha256"]),
    (
        "client_secret_basic",
        lambda p: {"token_endpoint_auth_method": "client_secret_basic", "scope": "read"},
        ["secret_sha256"],
    ),
    ("client_secret_post", lambda p: {"token_endpoint_auth_method": "client_secret_post"}, ["secret_sha256"]),
    (
        "client_secret_jwt",
        lambda p: {
            "token_endpoint_auth_method": "client_secret_jwt",
            "token_endpoint_auth_signing_alg": "HS256",
        },
        ["secret_sealed"],
    ),
    (
        "private_key_jwt (jwks)",
        lambda p: {
            "token_endpoint_auth_method": "private_key_jwt",
            "token_endpoint_auth_signing_alg": "ES256",
            "jwks": {"keys": [p.ec_jwk, p.rsa_jwk, p.ed25519_jwk]},
        },
        ["jwk", "jwk", "jwk"],
    ),
    (
        "private_key_jwt (jwks_uri)",
        lambda p: {
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks_uri": "https://app.example/jwks.json",
        },
        [],
    ),
    (
        "tls_client_auth (subject DN)",
        lambda p: {
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": dn_to_rfc4514(p.client_cert.subject),
            "tls_client_certificate_bound_access_tokens": True,
        },
        [],
    ),
    (
        "tls_client_auth (SAN DNS)",
        lambda p: {
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_san_dns": "client.example.com",
        },
        [],
    ),
    (
        "tls_client_auth (SAN URI)",
        lambda p: {
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_san_uri": "spiffe://example.org/client-one",
        },
        [],
    ),
    (
        "tls_client_auth (SAN IP)",
        lambda p: {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_ip": "192.0.2.7"},
        [],
    ),
    (
        "tls_client_auth (SAN email)",
        lambda p: {
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_san_email": "client-one@example.com",
        },
        [],
    ),
    (
        "self_signed_tls_client_auth (jwks x5c)",
        lambda p: {
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "tls_client_certificate_bound_access_tokens": True,
            "jwks": {"keys": [p.self_signed_jwk]},
        },
        ["certificate", "jwk"],
    ),
    (
        "self_signed_tls_client_auth (jwks_uri)",
        lambda p: {
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "jwks_uri": "https://app.example/jwks.json",
        },
        [],
    ),
]


@pytest.mark.parametrize(
    ("metadata_of", "expected_kinds"), [m[1:] for m in METHODS], ids=[m[0] for m in METHODS]
)
async def test_every_method_registers(
    http: httpx.AsyncClient, store: SqlStore, pki: Pki, metadata_of: MetadataOf, expected_kinds: list[str]
) -> None:
    metadata = metadata_of(pki)
    response = await register(http, metadata)
    assert response.status_code == 201, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    client_id = body["client_id"]
    assert body.items() >= metadata.items()  # everything registered is echoed
    assert isinstance(body["client_id_issued_at"], int)
    assert body["registration_client_uri"] == f"{REGISTRATION_BASE_URL}/{client_id}"
    assert len(body["registration_access_token"]) == 43
    secret_method = bool({"secret_sha256", "secret_sealed"} & set(expected_kinds))
    assert ("client_secret" in body) is secret_method
    assert ("client_secret_expires_at" in body) is secret_method
    if secret_method:
        assert body["client_secret_expires_at"] == 0
        assert len(body["client_secret"]) == 43

    stored = await store.get_client(client_id)
    assert stored is not None
    assert stored.source == "api"
    assert stored.metadata == {k: v for k, v in body.items() if k in stored.metadata}
    assert "client_secret" not in stored.metadata
    assert kinds(stored) == sorted(expected_kinds)


async def test_registered_defaults(http: httpx.AsyncClient) -> None:
    body = (await register(http, {})).json()
    assert body["token_endpoint_auth_method"] == "client_secret_basic"
    assert body["grant_types"] == ["client_credentials"]
    assert body["response_types"] == []
    assert body["tls_client_certificate_bound_access_tokens"] is False


async def test_an_unknown_field_with_a_huge_integer_is_answered(http: httpx.AsyncClient) -> None:
    """Unknown fields are kept as given; an integer beyond 64 bits must not turn the 201 into a 500
    after the client was stored (orjson refuses it; the answer falls back to json.dumps)."""
    response = await register(http, {"x_custom": 18446744073709551616})
    assert response.status_code == 201, response.text
    assert response.json()["x_custom"] == 18446744073709551616


# --- what is stored --------------------------------------------------------------------------------


async def test_secret_stored_as_digest_only(http: httpx.AsyncClient, store: SqlStore) -> None:
    body = (await register(http, {"token_endpoint_auth_method": "client_secret_post"})).json()
    secret, token = body["client_secret"], body["registration_access_token"]
    client_rows, cred_rows = await stored_rows(store)
    [client_row] = client_rows
    [cred_row] = cred_rows
    assert cred_row["kind"] == "secret_sha256"
    assert cred_row["value"] == sha256_hex(secret)
    assert client_row["registration_access_token_sha256"] == sha256_hex(token)
    everything = repr(client_rows) + repr(cred_rows)
    assert secret not in everything
    assert token not in everything


async def test_client_secret_jwt_secret_sealed(
    http: httpx.AsyncClient, store: SqlStore, sealer: Sealer
) -> None:
    body = (await register(http, {"token_endpoint_auth_method": "client_secret_jwt"})).json()
    secret, client_id = body["client_secret"], body["client_id"]
    client_rows, cred_rows = await stored_rows(store)
    [cred_row] = cred_rows
    assert cred_row["kind"] == "secret_sealed"
    assert secret not in repr(client_rows) + repr(cred_rows)
    assert sealer.open(cred_row["value"], aad=client_id.encode()) == secret.encode()
    with pytest.raises(SealingError):  # bound to this client: it does not open as another's
        sealer.open(cred_row["value"], aad=b"another-client")


async def test_mixed_methods_store_digest_and_sealed_secret(
    http: httpx.AsyncClient, store: SqlStore, sealer: Sealer
) -> None:
    body = (
        await register(
            http,
            {
                "token_endpoint_auth_method": "client_secret_basic",
                "introspection_endpoint_auth_method": "client_secret_jwt",
            },
        )
    ).json()
    stored = await store.get_client(body["client_id"])
    assert stored is not None
    by_kind = {c.kind: c for c in stored.credentials}
    assert by_kind["secret_sha256"].value == sha256_hex(body["client_secret"])
    opened = sealer.open(by_kind["secret_sealed"].value, aad=body["client_id"].encode())
    assert opened == body["client_secret"].encode()


async def test_certificate_and_jwk_credentials(http: httpx.AsyncClient, store: SqlStore, pki: Pki) -> None:
    keyless_kid = {k: v for k, v in pki.ec_jwk.items() if k != "kid"}
    metadata = {
        "token_endpoint_auth_method": "self_signed_tls_client_auth",
        "jwks": {"keys": [pki.self_signed_jwk, keyless_kid]},
    }
    body = (await register(http, metadata)).json()
    stored = await store.get_client(body["client_id"])
    assert stored is not None
    [cert_cred] = [c for c in stored.credentials if c.kind == "certificate"]
    cert = pki.self_signed_cert
    assert cert_cred.value == cert.public_bytes(Encoding.PEM).decode()
    assert cert_cred.thumbprint == x5t_s256(cert)
    assert cert_cred.not_before == cert.not_valid_before_utc
    assert cert_cred.not_after == cert.not_valid_after_utc
    jwks = {c.thumbprint: json.loads(c.value) for c in stored.credentials if c.kind == "jwk"}
    assert jwks["ss-1"] == pki.self_signed_jwk
    from joserfc.jwk import ECKey

    rfc7638 = ECKey.import_key(keyless_kid).thumbprint()
    assert jwks[rfc7638] == keyless_kid
    assert all("d" not in jwk for jwk in jwks.values())


# --- refused registrations --------------------------------------------------------------------------


async def test_invalid_metadata_refused_and_nothing_stored(
    http: httpx.AsyncClient, store: SqlStore, pki: Pki
) -> None:
    cases = [(name, raw_of(pki), field, "invalid_client_metadata") for name, raw_of, field, _ in INVALID]
    cases += [(name, raw, "redirect_uris", "invalid_redirect_uri") for name, raw, _ in REDIRECT_INVALID]
    sent = 0
    for name, raw, field, error in cases:
        try:
            content = json.dumps(raw, allow_nan=False)
        except (TypeError, ValueError):
            continue  # not expressible in JSON (a date, NaN): covered by the request parsing tests
        response = await http.post(
            "/register",
            content=content,
            headers={**bearer(INITIAL_TOKEN), "Content-Type": "application/json"},
        )
        assert response.status_code == 400, (name, response.text)
        body = response.json()
        assert body["error"] == error, name
        if is_text(raw):
            assert body["error_description"].startswith(f"{field}: "), (name, body)
        else:  # a lone surrogate: refused where the body is parsed (issue 15), before any field is read
            assert body["error_description"] == "the request body is not valid JSON", (name, body)
        assert response.headers["cache-control"] == "no-store"
        sent += 1
    assert sent > 80
    await assert_nothing_stored(store)


async def test_scope_catalogue(store: SqlStore, sealer: Sealer) -> None:
    async with serving(store, sealer, allowed_scopes=["read", "write"]) as server:
        http = server.http
        assert (await register(http, {"scope": "read"})).status_code == 201
        response = await register(http, {"scope": "read admin"})
    assert response.status_code == 400
    assert response.json()["error_description"] == "scope: not in this server's scope catalogue: admin"
    assert len(await store.list_clients()) == 1


async def test_consent_required_is_the_operators_alone(http: httpx.AsyncClient, store: SqlStore) -> None:
    """consent_required: false skips the consent page, so only the clients file may say it."""
    code_flow = {"grant_types": ["authorization_code"], "redirect_uris": ["https://app.example/cb"]}
    response = await register(http, {**code_flow, "consent_required": False})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
    assert response.json()["error_description"].startswith("consent_required: set by the operator")
    assert await store.list_clients() == []
    assert (await register(http, code_flow)).json()["response_types"] == ["code"]


# --- the initial access token -------------------------------------------------------------------------


async def test_registration_closed_without_initial_access_token(store: SqlStore, sealer: Sealer) -> None:
    async with serving(store, sealer, initial_access_token=None) as server:
        http = server.http
        assert not server.registrar.registration_open
        for token in (None, INITIAL_TOKEN, "anything"):
            response = await register(http, {}, token=token)
            assert response.status_code == 403
            body = response.json()
            assert body["error"] == "access_denied"
            assert "disabled" in body["error_description"]
            assert "initial access token" in body["error_description"]
    await assert_nothing_stored(store)


@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({}, "Bearer"),
        ({"Authorization": "Bearer wrong-token"}, 'Bearer error="invalid_token"'),
        ({"Authorization": f"Bearer {INITIAL_TOKEN}x"}, 'Bearer error="invalid_token"'),
        ({"Authorization": f"Basic {INITIAL_TOKEN}"}, "Bearer"),
        ({"Authorization": "Bearer "}, "Bearer"),
    ],
    ids=["missing", "wrong", "longer", "not bearer", "empty"],
)
async def test_initial_access_token_required(
    http: httpx.AsyncClient, store: SqlStore, headers: dict[str, str], challenge: str
) -> None:
    response = await http.post("/register", json={}, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert response.headers["www-authenticate"] == challenge
    await assert_nothing_stored(store)


async def test_bearer_scheme_is_case_insensitive(http: httpx.AsyncClient) -> None:
    response = await http.post("/register", json={}, headers={"Authorization": f"bearer {INITIAL_TOKEN}"})
    assert response.status_code == 201


async def test_token_checked_before_the_body(sqlite_http: httpx.AsyncClient) -> None:
    response = await sqlite_http.post(
        "/register", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 401


# --- request parsing: 400, never 500 ----------------------------------------------------------------

BAD_REQUESTS: list[tuple[str, bytes, str]] = [
    ("form body", b"client_name=x", "application/x-www-form-urlencoded"),
    ("no content type", b"{}", ""),
    ("invalid JSON", b"{not json", "application/json"),
    ("empty body", b"", "application/json"),
    ("array", b"[1, 2]", "application/json"),
    ("string", b'"x"', "application/json"),
    ("null", b"null", "application/json"),
    ("NaN", b'{"x_ratio": NaN}', "application/json"),
    ("Infinity", b'{"x_ratio": -Infinity}', "application/json"),
    ("duplicate member", b'{"client_name": "a", "client_name": "b"}', "application/json"),
    ("invalid UTF-8", b'{"client_name": "\xff\xfe"}', "application/json"),
    ("deep nesting", b"[" * 100_000 + b"]" * 100_000, "application/json"),
    ("too large", b'{"x": "' + b"a" * (300 * 1024) + b'"}', "application/json"),
    ("NUL escape", b'{"client_name": "a\\u0000b"}', "application/json"),
    ("lone surrogate escape", b'{"client_name": "\\ud800"}', "application/json"),
    ("huge integer", b'{"x_n": ' + b"9" * 5000 + b"}", "application/json"),
]


@pytest.mark.parametrize(
    ("content", "content_type"), [b[1:] for b in BAD_REQUESTS], ids=[b[0] for b in BAD_REQUESTS]
)
async def test_bad_request_bodies(
    sqlite_http: httpx.AsyncClient, sqlite_store: SqlStore, content: bytes, content_type: str
) -> None:
    headers = bearer(INITIAL_TOKEN)
    if content_type:
        headers["Content-Type"] = content_type
    response = await sqlite_http.post("/register", content=content, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_client_metadata"
    await assert_nothing_stored(sqlite_store)


async def test_json_with_charset_accepted(sqlite_http: httpx.AsyncClient) -> None:
    response = await sqlite_http.post(
        "/register",
        content=b'{"client_name": "x"}',
        headers={**bearer(INITIAL_TOKEN), "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 201


async def test_other_http_methods(sqlite_http: httpx.AsyncClient) -> None:
    assert (await sqlite_http.get("/register")).status_code == 405
    assert (await sqlite_http.patch("/register/abc")).status_code == 405


# --- RFC 7592 read ------------------------------------------------------------------------------------


async def registered(http: httpx.AsyncClient, metadata: dict[str, Any]) -> dict[str, Any]:
    response = await register(http, metadata)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_read(http: httpx.AsyncClient) -> None:
    created = await registered(http, {"client_name": "reader", "contacts": ["ops@app.example"]})
    response = await http.get(
        f"/register/{created['client_id']}", headers=bearer(created["registration_access_token"])
    )
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    read = response.json()
    assert read == {
        k: v for k, v in created.items() if k != "client_secret"
    }  # the secret is never shown again


async def test_wrong_token_and_unknown_client_look_the_same(http: httpx.AsyncClient) -> None:
    one = await registered(http, {"client_name": "one"})
    two = await registered(http, {"client_name": "two"})
    answers = []
    for path, token in [
        (f"/register/{one['client_id']}", "wrong"),
        (f"/register/{one['client_id']}", two["registration_access_token"]),  # another client's token
        (f"/register/{one['client_id']}", one["client_secret"]),
        ("/register/no-such-client", one["registration_access_token"]),
        ("/register/%00%ff", one["registration_access_token"]),  # not even a possible client id
        ("/register/" + "x" * 5000, one["registration_access_token"]),
    ]:
        for method in ("GET", "PUT", "DELETE"):
            response = await http.request(
                method, path, json={"client_id": one["client_id"]}, headers=bearer(token)
            )
            answers.append((response.status_code, response.json(), response.headers["www-authenticate"]))
    assert {json.dumps(a) for a in answers} == {
        json.dumps(
            (
                401,
                {
                    "error": "invalid_token",
                    "error_description": "the registration access token is not valid for this client",
                },
                'Bearer error="invalid_token"',
            )
        )
    }


async def test_configuration_endpoint_requires_a_token(http: httpx.AsyncClient) -> None:
    created = await registered(http, {})
    for method in ("GET", "PUT", "DELETE"):
        response = await http.request(method, f"/register/{created['client_id']}")
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["error"] == "invalid_token"
    assert (
        await http.get(f"/register/{created['client_id']}", headers={"Authorization": "Bearer"})
    ).status_code == 401


# --- RFC 7592 update ----------------------------------------------------------------------------------


async def put(http: httpx.AsyncClient, created: dict[str, Any], body: dict[str, Any]) -> httpx.Response:
    return await http.put(
        f"/register/{created['client_id']}", json=body, headers=bearer(created["registration_access_token"])
    )


async def test_update_replaces_everything_and_keeps_the_secret(
    http: httpx.AsyncClient, store: SqlStore
) -> None:
    created = await registered(
        http, {"client_name": "before", "contacts": ["a@app.example"], "scope": "read"}
    )
    before = await store.get_client(created["client_id"])
    # the usual RFC 7592 flow: PUT back what was read, changed; server-set fields in it are ignored
    read = (
        await http.get(
            f"/register/{created['client_id']}", headers=bearer(created["registration_access_token"])
        )
    ).json()
    new = {k: v for k, v in read.items() if k not in ("contacts", "scope")} | {"client_name": "after"}
    response = await put(http, created, new)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["client_name"] == "after"
    assert "contacts" not in updated
    assert "scope" not in updated  # full replacement: what is left out is gone
    assert "client_secret" not in updated  # kept, so not shown
    assert updated["client_secret_expires_at"] == 0
    assert updated["client_id_issued_at"] == created["client_id_issued_at"]
    assert updated["registration_access_token"] == created["registration_access_token"]
    after = await store.get_client(created["client_id"])
    assert after is not None
    assert before is not None
    assert after.credentials == before.credentials  # same secret record, same id and created_at
    assert after.metadata["client_name"] == "after"


async def test_update_with_the_current_secret(http: httpx.AsyncClient) -> None:
    created = await registered(http, {})
    body = {"client_id": created["client_id"], "client_secret": created["client_secret"], "client_name": "x"}
    assert (await put(http, created, body)).status_code == 200


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"client_id": None}, "client_id"),
        ({"client_id": "someone-else"}, "client_id"),
        ({"client_secret": "not-the-secret"}, "client_secret"),
        ({"client_secret": 42}, "client_secret"),
        ({"grant_types": ["password"]}, "grant_types"),
        ({"token_endpoint_auth_method": "tls_client_auth"}, "token_endpoint_auth_method"),
        ({"redirect_uris": ["relative"]}, "redirect_uris"),
    ],
)
async def test_refused_update_changes_nothing(
    http: httpx.AsyncClient, store: SqlStore, change: dict[str, Any], field: str
) -> None:
    created = await registered(http, {"client_name": "unchanged"})
    before = await store.get_client(created["client_id"])
    body = {"client_id": created["client_id"], "client_name": "changed"} | change
    body = {k: v for k, v in body.items() if v is not None}
    response = await put(http, created, body)
    assert response.status_code == 400
    assert response.json()["error_description"].startswith(f"{field}: ")
    assert await store.get_client(created["client_id"]) == before


async def test_update_bad_body_is_400_after_the_token(http: httpx.AsyncClient) -> None:
    created = await registered(http, {})
    path = f"/register/{created['client_id']}"
    bad = {"content": b"[", "headers": {"Content-Type": "application/json"}}
    response = await http.put(
        path, content=b"[", headers={**bearer("wrong"), "Content-Type": "application/json"}
    )
    assert response.status_code == 401
    response = await http.put(
        path,
        content=bad["content"],
        headers={**bearer(created["registration_access_token"]), **bad["headers"]},
    )
    assert response.status_code == 400


async def test_update_to_a_secret_method_issues_a_secret(
    http: httpx.AsyncClient, store: SqlStore, pki: Pki
) -> None:
    created = await registered(
        http,
        {"token_endpoint_auth_method": "tls_client_auth", "tls_client_auth_san_dns": "client.example.com"},
    )
    assert "client_secret" not in created
    response = await put(
        http,
        created,
        {"client_id": created["client_id"], "token_endpoint_auth_method": "client_secret_basic"},
    )
    assert response.status_code == 200
    secret = response.json()["client_secret"]
    stored = await store.get_client(created["client_id"])
    assert stored is not None
    assert [(c.kind, c.value) for c in stored.credentials] == [("secret_sha256", sha256_hex(secret))]


async def test_update_basic_to_jwt_needs_a_new_secret(
    http: httpx.AsyncClient, store: SqlStore, sealer: Sealer
) -> None:
    created = await registered(http, {"token_endpoint_auth_method": "client_secret_basic"})
    response = await put(
        http, created, {"client_id": created["client_id"], "token_endpoint_auth_method": "client_secret_jwt"}
    )
    assert response.status_code == 200
    new_secret = response.json()["client_secret"]  # only a digest of the old one is kept: it cannot be sealed
    assert new_secret != created["client_secret"]
    stored = await store.get_client(created["client_id"])
    assert stored is not None
    [cred] = stored.credentials
    assert cred.kind == "secret_sealed"
    assert sealer.open(cred.value, aad=created["client_id"].encode()) == new_secret.encode()


async def test_update_jwt_to_basic_keeps_the_secret(http: httpx.AsyncClient, store: SqlStore) -> None:
    created = await registered(http, {"token_endpoint_auth_method": "client_secret_jwt"})
    response = await put(
        http,
        created,
        {
            "client_id": created["client_id"],
            "client_secret": created["client_secret"],
            "token_endpoint_auth_method": "client_secret_post",
        },
    )
    assert response.status_code == 200
    assert "client_secret" not in response.json()
    stored = await store.get_client(created["client_id"])
    assert stored is not None
    assert [(c.kind, c.value) for c in stored.credentials] == [
        ("secret_sha256", sha256_hex(created["client_secret"]))
    ]


async def test_update_to_certificate_method_drops_the_secret(
    http: httpx.AsyncClient, store: SqlStore, pki: Pki
) -> None:
    created = await registered(http, {})
    response = await put(
        http,
        created,
        {
            "client_id": created["client_id"],
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "jwks": {"keys": [pki.self_signed_jwk]},
        },
    )
    assert response.status_code == 200
    assert "client_secret_expires_at" not in response.json()
    stored = await store.get_client(created["client_id"])
    assert stored is not None
    assert kinds(stored) == ["certificate", "jwk"]


async def test_update_rotates_the_certificate(http: httpx.AsyncClient, store: SqlStore, pki: Pki) -> None:
    created = await registered(
        http,
        {
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "jwks": {"keys": [pki.self_signed_jwk]},
        },
    )
    from certbound.pki.issue import self_signed_client_cert

    new_cert, _ = self_signed_client_cert("CN=self-signed-client")
    new_jwk = jwk_with_x5c(new_cert, kid="ss-2")
    both = {"keys": [pki.self_signed_jwk, new_jwk]}
    body = {"client_id": created["client_id"], "token_endpoint_auth_method": "self_signed_tls_client_auth"}
    assert (await put(http, created, body | {"jwks": both})).status_code == 200
    stored = await store.get_client(created["client_id"])
    assert stored is not None
    assert {c.thumbprint for c in stored.credentials if c.kind == "certificate"} == {
        x5t_s256(pki.self_signed_cert),
        x5t_s256(new_cert),
    }
    assert (await put(http, created, body | {"jwks": {"keys": [new_jwk]}})).status_code == 200
    stored = await store.get_client(created["client_id"])
    assert stored is not None
    # the certificate no longer listed stays for the overlap (client_cert_rotation_overlap, a day)
    ends = {c.thumbprint: c.not_after for c in stored.credentials if c.kind == "certificate"}
    assert set(ends) == {x5t_s256(pki.self_signed_cert), x5t_s256(new_cert)}
    old_end = ends[x5t_s256(pki.self_signed_cert)]
    assert old_end is not None
    assert old_end < pki.self_signed_cert.not_valid_after_utc
    assert ends[x5t_s256(new_cert)] == new_cert.not_valid_after_utc


# --- RFC 7592 delete ----------------------------------------------------------------------------------


async def test_delete(http: httpx.AsyncClient, store: SqlStore, pki: Pki) -> None:
    created = await registered(
        http,
        {
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "jwks": {"keys": [pki.self_signed_jwk]},
        },
    )
    path, headers = f"/register/{created['client_id']}", bearer(created["registration_access_token"])
    response = await http.delete(path, headers=headers)
    assert response.status_code == 204
    assert response.content == b""
    await assert_nothing_stored(store)  # credentials went with the client
    assert (await http.get(path, headers=headers)).status_code == 401
    assert (await http.delete(path, headers=headers)).status_code == 401


# --- file clients are read-only -----------------------------------------------------------------------


async def test_file_clients_cannot_be_managed_through_the_api(
    http: httpx.AsyncClient, store: SqlStore, registrar: Registrar
) -> None:
    token = "a-token-nobody-has"
    # A file client has no registration access token, so it cannot even be read: always 401.
    await store.sync_file_clients(
        [Client(client_id="from-file", metadata={"client_name": "f"}, source="file")]
    )
    for method in ("GET", "PUT", "DELETE"):
        response = await http.request(
            method, "/register/from-file", json={"client_id": "from-file"}, headers=bearer(token)
        )
        assert response.status_code == 401
    # Even one that somehow has a token (defence in depth) is read-only: 403 for PUT and DELETE.
    await store.sync_file_clients(
        [
            Client(
                client_id="from-file",
                metadata={"client_name": "f"},
                source="file",
                registration_access_token_sha256=sha256_hex(token),
            )
        ]
    )
    before = await store.get_client("from-file")
    assert (await http.get("/register/from-file", headers=bearer(token))).status_code == 200
    for method in ("PUT", "DELETE"):
        response = await http.request(
            method,
            "/register/from-file",
            json={"client_id": "from-file", "client_name": "g"},
            headers=bearer(token),
        )
        assert response.status_code == 403
        assert response.json()["error"] == "access_denied"
        assert "clients file" in response.json()["error_description"]
    assert await store.get_client("from-file") == before
