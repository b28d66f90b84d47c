"""openid-client (npm, the version pinned in interop/package.json) against a real `certbound serve --dev`:
discovery, a client_credentials token, introspection, revocation and introspection again, with
tls_client_auth, self_signed_tls_client_auth, private_key_jwt and client_secret_basic.

The server runs with a separate mTLS listener (--mtls-port): its main listener does not ask for client
certificates, so the certificate methods work only if openid-client follows mtls_endpoint_aliases
(`use_mtls_endpoint_aliases`). The Node side is interop/openid_client/run.mjs (see its header for the
input and output); it presents the certificate through a fetch built on node:https.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from certbound.cli.explain import client_auth_events
from certbound.pki.devpki import ensure_dev_pki
from tests.interop.peers import ensure_node_modules
from tests.server.process.serverproc import RunningServer, free_port, start_server
from tests.server.wire.material import Cred, Material, make_material
from tests.server.wire.wire import jwt_claims
from tests.server.wire.world import BOUND, CC, Registered, register_clients

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[2] / "interop" / "openid_client" / "run.mjs"
SCOPE = "interop:read"


@dataclass
class Peer:
    server: RunningServer
    mtls_url: str
    m: Material
    clients: dict[str, Registered]


@pytest.fixture(scope="module")
def certbound_for_openid_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    ensure_node_modules()
    base = tmp_path_factory.mktemp("openid-client")
    dev = ensure_dev_pki(base / "data" / "pki")
    m = make_material(dev, base / "material")
    mtls_port = free_port()
    server = start_server(["--mtls-port", str(mtls_port)], base / "data")
    try:
        common = {**CC, "scope": SCOPE}
        clients = register_clients(
            server,
            {
                "tls_client_auth": {
                    "token_endpoint_auth_method": "tls_client_auth",
                    "tls_client_auth_subject_dn": m["dn"].subject,
                    **common,
                    **BOUND,
                },
                "self_signed_tls_client_auth": {
                    "token_endpoint_auth_method": "self_signed_tls_client_auth",
                    "jwks": {"keys": [m["ss"].jwk()]},
                    **common,
                    **BOUND,
                },
                "private_key_jwt": {
                    "token_endpoint_auth_method": "private_key_jwt",
                    "jwks": {"keys": [m.keys["pk"].public_jwk()]},
                    **common,
                    **BOUND,
                },
                "client_secret_basic": {"token_endpoint_auth_method": "client_secret_basic", **common},
            },
        )
        yield Peer(server, f"https://127.0.0.1:{mtls_port}", m, clients)
    finally:
        server.stop()


def run_openid_client(request: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=SCRIPT.parent,
    )
    assert done.stdout.strip(), f"no output from openid-client (exit {done.returncode}): {done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    assert "error" not in result, result["error"]
    assert done.returncode == 0, done.stderr
    return result


# method -> the certificate presented (None: none), whether tokens are bound
CASES: dict[str, tuple[str | None, bool]] = {
    "tls_client_auth": ("dn", True),
    "self_signed_tls_client_auth": ("ss", True),
    "private_key_jwt": ("binder", True),  # authenticates with its key, binds with a certificate
    "client_secret_basic": (None, False),
}


@pytest.mark.parametrize("method", list(CASES))
def test_openid_client_obtains_introspects_and_revokes(
    certbound_for_openid_client: Peer, method: str
) -> None:
    peer = certbound_for_openid_client
    client = peer.clients[method]
    cert_name, bound = CASES[method]
    cert: Cred | None = peer.m[cert_name] if cert_name else None
    request: dict[str, Any] = {
        "issuer": peer.server.url,
        "client_id": client.client_id,
        "method": method,
        "ca": str(peer.server.pki / "ca.crt"),
        "scope": SCOPE,
        "use_mtls_endpoint_aliases": cert is not None,
    }
    if cert is not None:
        request |= {"cert": str(cert.cert_file), "key": str(cert.key_file)}
    if method == "client_secret_basic":
        request["client_secret"] = client.secret
    if method == "private_key_jwt":
        request["private_jwk"] = peer.m.keys["pk"].private_jwk()
    mark = len(peer.server.output())

    result = run_openid_client(request)

    assert result["metadata"]["issuer"] == peer.server.url
    assert result["metadata"]["mtls_endpoint_aliases"]["token_endpoint"] == peer.mtls_url + "/token"
    token = result["token"]
    assert token["token_type"].lower() == "bearer"  # openid-client normalizes it to lower case
    assert token["scope"] == SCOPE
    claims = jwt_claims(token["access_token"])
    assert claims["client_id"] == client.client_id
    if bound:
        assert cert is not None
        assert claims["cnf"] == {"x5t#S256": cert.x5t}
    else:
        assert "cnf" not in claims
    before = result["introspection"]
    assert before["active"] is True
    assert before["client_id"] == client.client_id
    assert before.get("cnf") == claims.get("cnf")
    assert result["revoked"] is True
    assert result["introspection_after"] == {"active": False}

    # the server saw exactly this method succeed at each endpoint (twice at introspection)
    events = [
        e for e in client_auth_events(peer.server.output()[mark:]) if e.get("client_id") == client.client_id
    ]
    assert [(e["endpoint"], e["outcome"], e["method"]) for e in events] == [
        ("token", "success", method),
        ("introspection", "success", method),
        ("revocation", "success", method),
        ("introspection", "success", method),
    ]
    if cert is not None:
        assert {e.get("cert_x5t_s256") for e in events} == {cert.x5t}


def test_openid_client_reads_certbounds_invalid_client(certbound_for_openid_client: Peer) -> None:
    """tls_client_auth without following the aliases: the main listener asks for no certificate, so
    certbound answers 401 invalid_client with a WWW-Authenticate challenge; openid-client reports the
    challenge (WWWAuthenticateChallengeError) and the invalid_client body is in its response."""
    peer = certbound_for_openid_client
    request = {
        "issuer": peer.server.url,
        "client_id": peer.clients["tls_client_auth"].client_id,
        "method": "tls_client_auth",
        "ca": str(peer.server.pki / "ca.crt"),
        "cert": str(peer.m["dn"].cert_file),
        "key": str(peer.m["dn"].key_file),
        "use_mtls_endpoint_aliases": False,
    }
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=60,
        cwd=SCRIPT.parent,
    )
    assert done.returncode == 1
    error = json.loads(done.stdout)["error"]
    assert error["status"] == 401, error
    assert error["body"]["error"] == "invalid_client", error
    # a WWW-Authenticate challenge on every 401 (issue 4): openid-client surfaces it as the challenge
    assert error["code"] == "OAUTH_WWW_AUTHENTICATE_CHALLENGE"
    assert error["challenges"][0]["scheme"] == "basic"
