"""Clients declared in the TOML clients file: loaded through the same validator, read-only afterwards."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import httpx
import pytest

from certbound.pki.thumbprint import x5t_s256
from certbound.sealing import Sealer
from certbound.server.bootstrap import (
    DEMO_APP_ID,
    DEMO_APP_REDIRECT_URI,
    DEMO_CLIENT_DN,
    DEMO_CLIENT_ID,
    _demo_clients_toml,
)
from certbound.server.clients.file_clients import ClientsFileError, load_clients_file, parse_clients_toml
from certbound.store.sql import SqlStore
from tests.server.clients.conftest import Pki, bearer

DIGEST = hashlib.sha256(b"the secret").hexdigest()


def toml_value(value: object) -> str:
    """JSON strings, arrays and numbers are valid TOML values; objects become inline tables."""
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


def clients_toml(pki: Pki, sealer: Sealer) -> str:
    sealed = sealer.seal(b"jwt secret", aad=b"hmac-client")
    return f"""
# a comment
[[client]]
client_id = "gateway"
client_name = "API gateway"
token_endpoint_auth_method = "tls_client_auth"
tls_client_auth_subject_dn = "CN=gateway,O=Example"
tls_client_certificate_bound_access_tokens = true
scope = "introspect"

[[client]]
client_id = "batch-job"
token_endpoint_auth_method = "client_secret_basic"
client_secret_sha256 = "{DIGEST.upper()}"
grant_types = ["client_credentials"]

[[client]]
client_id = "hmac-client"
token_endpoint_auth_method = "client_secret_jwt"
client_secret_sealed = "{sealed}"

[[client]]
client_id = "self-signed"
token_endpoint_auth_method = "self_signed_tls_client_auth"
jwks = {toml_value({"keys": [pki.self_signed_jwk]})}

[[client]]
client_id = "signer"
token_endpoint_auth_method = "private_key_jwt"
jwks_uri = "https://signer.example/jwks.json"
"""


def test_load(tmp_path: Path, pki: Pki, sealer: Sealer) -> None:
    path = tmp_path / "clients.toml"
    path.write_text(clients_toml(pki, sealer))
    loaded = {c.client_id: c for c in load_clients_file(path, sealer=sealer)}
    assert list(loaded) == ["gateway", "batch-job", "hmac-client", "self-signed", "signer"]
    assert all(c.source == "file" and c.registration_access_token_sha256 is None for c in loaded.values())

    gateway = loaded["gateway"]
    assert gateway.metadata["tls_client_auth_subject_dn"] == "CN=gateway,O=Example"
    assert gateway.metadata["grant_types"] == ["client_credentials"]  # defaults apply as for registration
    assert gateway.credentials == ()

    [digest] = loaded["batch-job"].credentials
    assert (digest.kind, digest.value) == ("secret_sha256", DIGEST)  # normalized to lower case
    assert "client_secret_sha256" not in loaded["batch-job"].metadata

    [sealed] = loaded["hmac-client"].credentials
    assert sealed.kind == "secret_sealed"
    assert sealer.open(sealed.value, aad=b"hmac-client") == b"jwt secret"

    certs = [c for c in loaded["self-signed"].credentials if c.kind == "certificate"]
    assert [c.thumbprint for c in certs] == [x5t_s256(pki.self_signed_cert)]
    assert loaded["signer"].credentials == ()


def test_load_is_deterministic(pki: Pki, sealer: Sealer) -> None:
    text = clients_toml(pki, sealer)
    assert parse_clients_toml(text) == parse_clients_toml(text)  # same credential ids: a reload is a no-op


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "clients.toml"
    path.write_text("# no clients yet\n")
    assert load_clients_file(path) == []


def test_dev_demo_client_loads() -> None:
    demo, app = parse_clients_toml(_demo_clients_toml())
    assert demo.client_id == DEMO_CLIENT_ID
    assert demo.metadata["tls_client_auth_subject_dn"] == DEMO_CLIENT_DN
    assert app.client_id == DEMO_APP_ID
    assert app.metadata["token_endpoint_auth_method"] == "none"
    assert app.metadata["redirect_uris"] == [DEMO_APP_REDIRECT_URI]


BAD_FILES: list[tuple[str, str, str]] = [
    # (id, TOML, what the one-line message must contain)
    ("not TOML", "[[client]\nclient_id = ", "not valid TOML"),
    ("unknown top-level key", '[[clients]]\nclient_id = "a"\n', "unknown top-level key 'clients'"),
    ("client not an array of tables", 'client = "a"\n', "[[client]]"),
    ("missing client_id", '[[client]]\nclient_name = "a"\n', "client #1: client_id: required"),
    ("client_id with space", '[[client]]\nclient_id = "a b"\n', "client #1: client_id"),
    (
        "duplicate client_id",
        '[[client]]\nclient_id = "a"\ntoken_endpoint_auth_method = "none"\n'
        'grant_types = ["authorization_code"]\nredirect_uris = ["https://app.example/cb"]\n' * 2,
        "'a': client_id: declared twice",
    ),
    (
        "secret in clear",
        '[[client]]\nclient_id = "a"\nclient_secret = "hunter2"\n',
        "'a': client_secret: secrets are not written in clear",
    ),
    ("basic without digest", '[[client]]\nclient_id = "a"\n', "'a': client_secret_sha256: required"),
    (
        "digest not hex",
        '[[client]]\nclient_id = "a"\nclient_secret_sha256 = "xyz"\n',
        "'a': client_secret_sha256",
    ),
    (
        "digest with tls_client_auth",
        '[[client]]\nclient_id = "a"\ntoken_endpoint_auth_method = "tls_client_auth"\n'
        f'tls_client_auth_san_dns = "a.example"\nclient_secret_sha256 = "{DIGEST}"\n',
        "'a': client_secret_sha256: only used with client_secret_basic/post",
    ),
    (
        "jwt without sealed secret",
        '[[client]]\nclient_id = "a"\ntoken_endpoint_auth_method = "client_secret_jwt"\n'
        f'client_secret_sha256 = "{DIGEST}"\n',
        "'a': client_secret_sealed: client_secret_jwt needs the secret itself",
    ),
    (
        "sealed with basic",
        f'[[client]]\nclient_id = "a"\nclient_secret_sha256 = "{DIGEST}"\nclient_secret_sealed = "v1.x.y"\n',
        "'a': client_secret_sealed: only used with client_secret_jwt",
    ),
    (
        "metadata error names client and field",
        '[[client]]\nclient_id = "gw"\ntoken_endpoint_auth_method = "tls_client_auth"\n',
        "client 'gw': token_endpoint_auth_method: tls_client_auth requires exactly one of",
    ),
    (
        "bad DN",
        '[[client]]\nclient_id = "gw"\ntoken_endpoint_auth_method = "tls_client_auth"\n'
        'tls_client_auth_subject_dn = "gateway"\n',
        "client 'gw': tls_client_auth_subject_dn: not an RFC 4514 distinguished name",
    ),
    (
        "TOML date",
        f'[[client]]\nclient_id = "a"\nclient_secret_sha256 = "{DIGEST}"\nx_since = 2025-01-01\n',
        "client 'a': x_since: x_since is not a JSON value",
    ),
]


@pytest.mark.parametrize(("text", "words"), [b[1:] for b in BAD_FILES], ids=[b[0] for b in BAD_FILES])
def test_bad_files(tmp_path: Path, text: str, words: str) -> None:
    path = tmp_path / "clients.toml"
    path.write_text(text)
    with pytest.raises(ClientsFileError) as info:
        load_clients_file(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert words in message, message
    assert "\n" not in message


def test_sealed_secret_checked_with_the_sealer(tmp_path: Path, sealer: Sealer) -> None:
    path = tmp_path / "clients.toml"
    sealed_for_another = sealer.seal(b"s", aad=b"another-client")
    path.write_text(
        f'[[client]]\nclient_id = "a"\ntoken_endpoint_auth_method = "client_secret_jwt"\n'
        f'client_secret_sealed = "{sealed_for_another}"\n'
    )
    assert len(load_clients_file(path)) == 1  # without a sealer it cannot be checked
    with pytest.raises(ClientsFileError, match="'a': client_secret_sealed: cannot be opened"):
        load_clients_file(path, sealer=sealer)


def test_scope_catalogue_applies(tmp_path: Path) -> None:
    path = tmp_path / "clients.toml"
    path.write_text(f'[[client]]\nclient_id = "a"\nclient_secret_sha256 = "{DIGEST}"\nscope = "read admin"\n')
    with pytest.raises(ClientsFileError, match="'a': scope: not in this server's scope catalogue: admin"):
        load_clients_file(path, allowed_scopes=frozenset({"read"}))


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(ClientsFileError, match="cannot read the clients file"):
        load_clients_file(tmp_path / "missing.toml")


async def test_synced_file_clients_are_read_only(
    tmp_path: Path, pki: Pki, sealer: Sealer, store: SqlStore, http: httpx.AsyncClient
) -> None:
    path = tmp_path / "clients.toml"
    path.write_text(clients_toml(pki, sealer))
    await store.sync_file_clients(load_clients_file(path, sealer=sealer))
    before = await store.list_clients()
    assert len(before) == 5
    for client in before:
        for method in ("GET", "PUT", "DELETE"):
            response = await http.request(
                method,
                f"/register/{client.client_id}",
                json={"client_id": client.client_id},
                headers=bearer("any-token"),
            )
            assert response.status_code == 401
    assert await store.list_clients() == before
    # loading the same file again changes nothing
    generation = await store.generation()
    await store.sync_file_clients(load_clients_file(path, sealer=sealer))
    assert await store.generation() == generation


def test_mixed_methods_need_digest_and_sealed_secret_of_the_same_secret(
    tmp_path: Path, sealer: Sealer
) -> None:
    path = tmp_path / "clients.toml"
    head = '[[client]]\nclient_id = "a"\nintrospection_endpoint_auth_method = "client_secret_jwt"\n'
    sealed = sealer.seal(b"the secret", aad=b"a")
    path.write_text(head + f'client_secret_sealed = "{sealed}"\nclient_secret_sha256 = "{DIGEST}"\n')
    [client] = load_clients_file(path, sealer=sealer)
    assert sorted(c.kind for c in client.credentials) == ["secret_sealed", "secret_sha256"]
    other = sealer.seal(b"another secret", aad=b"a")
    path.write_text(head + f'client_secret_sealed = "{other}"\nclient_secret_sha256 = "{DIGEST}"\n')
    with pytest.raises(ClientsFileError, match="'a': client_secret_sha256: is not the digest of the secret"):
        load_clients_file(path, sealer=sealer)
