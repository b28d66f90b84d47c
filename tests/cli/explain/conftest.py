"""A server's data directory as `certbound serve --dev` leaves it: the dev PKI, a migrated SQLite store
with clients declared in a clients file, and the certificates the tests present to `certbound explain`."""

from __future__ import annotations

import asyncio
import hashlib
from typing import Any

import pytest

from certbound.config import load_settings
from certbound.pki.devpki import ensure_dev_pki
from certbound.server.bootstrap import initialize
from tests.cli.explain.cli import SECRET, Server, clients_toml
from tests.server.wire.material import ORG, make_material


@pytest.fixture(scope="session")
def server_data(tmp_path_factory: pytest.TempPathFactory) -> Server:
    base = tmp_path_factory.mktemp("explain")
    data = base / "data"
    dev = ensure_dev_pki(data / "pki")
    m = make_material(dev, base / "material")
    cc = {"grant_types": ["client_credentials"]}
    clients: dict[str, dict[str, Any]] = {
        "tls-dn": {
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": f"CN=e2e-dn,{ORG}",
            "tls_client_certificate_bound_access_tokens": True,
            **cc,
        },
        "tls-dns": {
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_san_dns": "client.e2e.example",
            **cc,
        },
        "tls-inter": {
            "token_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": f"CN=e2e-via-intermediate,{ORG}",
            **cc,
        },
        "self-signed": {
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "jwks": {"keys": [m["ss"].jwk(), m["ss-expired"].jwk()]},
            **cc,
        },
        "basic": {
            "token_endpoint_auth_method": "client_secret_basic",
            "client_secret_sha256": hashlib.sha256(SECRET.encode()).hexdigest(),
            **cc,
        },
        "pk-jwt": {
            "token_endpoint_auth_method": "private_key_jwt",
            "jwks": {"keys": [m.keys["pk"].public_jwk()]},
            **cc,
        },
        "public": {
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "redirect_uris": ["http://127.0.0.1:9/cb"],
        },
        # authenticates by secret at the token endpoint, by certificate at introspection
        "split": {
            "token_endpoint_auth_method": "client_secret_basic",
            "client_secret_sha256": hashlib.sha256(SECRET.encode()).hexdigest(),
            "introspection_endpoint_auth_method": "tls_client_auth",
            "tls_client_auth_subject_dn": f"CN=e2e-dn,{ORG}",
            **cc,
        },
    }
    clients_file = base / "clients.toml"
    clients_file.write_text(clients_toml(clients))
    settings = load_settings({"data_dir": data, "clients_file": clients_file}, serving=False)
    asyncio.run(initialize(settings))
    return Server(data, m)
