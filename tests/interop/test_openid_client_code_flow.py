"""openid-client (npm, pinned in interop/package.json) as the relying party of the code flow against a
real `certbound serve --dev`: PKCE, the code exchange with every check openid-client makes (state,
nonce, the ID token, RFC 9207 iss), userinfo and a refresh; as a confidential tls_client_auth client
(tokens bound to its certificate, plain and pushed authorization requests) and as a public client
(``none``) whose refresh token is bound to the certificate it presented (RFC 8705 section 4).

The test plays the person at the login page in between, through the pages' contract for automated
clients (one form with ``username`` and ``password``; the consent form's ``decision=approve``). The
Node side is interop/openid_client/code_flow.mjs.
"""

from __future__ import annotations

import json
import re
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urljoin

import httpx
import pytest

from certbound.pki.devpki import ensure_dev_pki
from tests.interop.peers import ensure_node_modules
from tests.server.process.serverproc import RunningServer, free_port, start_server
from tests.server.wire.material import Cred, Material, make_material
from tests.server.wire.wire import jwt_claims
from tests.server.wire.world import Registered, register_clients

pytestmark = pytest.mark.slow
SCRIPT = Path(__file__).resolve().parents[2] / "interop" / "openid_client" / "code_flow.mjs"
WEB_CB = "https://rp.example/cb"
NATIVE_CB = "http://127.0.0.1:9/cb"
CODE_FLOW = {"grant_types": ["authorization_code", "refresh_token"]}


@dataclass
class Peer:
    server: RunningServer
    mtls_url: str
    m: Material
    clients: dict[str, Registered]

    @property
    def password(self) -> str:
        return (self.server.data_dir / "alice-password").read_text().strip()


@pytest.fixture(scope="module")
def peer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Peer]:
    ensure_node_modules()
    base = tmp_path_factory.mktemp("openid-client-code-flow")
    dev = ensure_dev_pki(base / "data" / "pki")
    m = make_material(dev, base / "material")
    mtls_port = free_port()
    server = start_server(["--mtls-port", str(mtls_port)], base / "data")
    try:
        clients = register_clients(
            server,
            {
                "tls_client_auth": {
                    "token_endpoint_auth_method": "tls_client_auth",
                    "tls_client_auth_subject_dn": m["dn"].subject,
                    "tls_client_certificate_bound_access_tokens": True,
                    "redirect_uris": [WEB_CB],
                    "scope": "offline_access",
                    **CODE_FLOW,
                },
                "none": {
                    "token_endpoint_auth_method": "none",
                    "tls_client_certificate_bound_access_tokens": True,
                    "redirect_uris": [NATIVE_CB],
                    "scope": "offline_access",
                    **CODE_FLOW,
                },
            },
        )
        yield Peer(server, f"https://127.0.0.1:{mtls_port}", m, clients)
    finally:
        server.stop()


def openid_client(request: dict[str, Any]) -> dict[str, Any]:
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(SCRIPT)], input=json.dumps(request), capture_output=True, text=True, timeout=60,
        cwd=SCRIPT.parent,
    )  # fmt: skip
    assert done.stdout.strip(), f"no output from openid-client (exit {done.returncode}): {done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    assert "error" not in result, result["error"]
    return result


def log_in_and_approve(server: RunningServer, url: str, username: str, password: str) -> str:
    """The person's part, by the pages' contract: where the browser is sent back to the client."""
    with server.client(cert=False) as http:
        response = http.get(url)
        while response.status_code in (200, 303):
            if response.status_code == 303:
                location = urljoin(server.url, response.headers["location"])
                if not location.startswith(server.url):
                    return location
                response = http.get(location)
                continue
            fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', response.text))
            action = re.search(r'<form method="post" action="([^"]+)"', response.text)
            assert action is not None, response.text
            if 'name="password"' in response.text:
                fields |= {"username": username, "password": password}
            else:
                fields["decision"] = "approve"
            response = http.post(
                server.url + action.group(1), content=urlencode(fields),
                headers={"content-type": "application/x-www-form-urlencoded"},
            )  # fmt: skip
        raise AssertionError(f"{response.status_code}: {response.text[:500]}")


def code_flow(peer: Peer, method: str, cert: Cred, *, par: bool = False) -> dict[str, Any]:
    client = peer.clients[method]
    request = {
        "issuer": peer.server.url,
        "client_id": client.client_id,
        "method": method,
        "ca": str(peer.server.pki / "ca.crt"),
        "cert": str(cert.cert_file),
        "key": str(cert.key_file),
        "use_mtls_endpoint_aliases": True,
        "redirect_uri": WEB_CB if method == "tls_client_auth" else NATIVE_CB,
        "scope": "openid profile email offline_access",
        "par": par,
    }
    started = openid_client({**request, "step": "start"})
    if par:
        assert "request_uri=urn" in started["url"]
    callback = log_in_and_approve(peer.server, started["url"], "alice", peer.password)
    return openid_client({**request, **started, "step": "finish", "callback_url": callback})


@pytest.mark.parametrize("par", [False, True], ids=["plain", "pushed"])
def test_a_confidential_tls_client_auth_client(peer: Peer, par: bool) -> None:
    cert = peer.m["dn"]
    result = code_flow(peer, "tls_client_auth", cert, par=par)
    token, refreshed = result["token"], result["refreshed"]
    assert token["token_type"].lower() == "bearer"
    claims = result["id_token_claims"]
    assert claims["iss"] == peer.server.url
    assert claims["aud"] == peer.clients["tls_client_auth"].client_id
    assert result["userinfo"]["sub"] == claims["sub"]
    assert result["userinfo"]["preferred_username"] == "alice"
    assert result["userinfo"]["email"] == "alice@example.com"
    assert result["userinfo_after_refresh"] == result["userinfo"]
    for access in (token["access_token"], refreshed["access_token"]):
        assert jwt_claims(access)["cnf"] == {"x5t#S256": cert.x5t}
    assert refreshed["refresh_token"] != token["refresh_token"]


def test_a_public_client_whose_refresh_token_is_bound_to_its_certificate(peer: Peer) -> None:
    """Its certificate is self-signed and registered nowhere: presenting it binds the tokens."""
    cert = peer.m["binder"]
    result = code_flow(peer, "none", cert)
    for access in (result["token"]["access_token"], result["refreshed"]["access_token"]):
        assert jwt_claims(access)["cnf"] == {"x5t#S256": cert.x5t}
    assert result["userinfo"]["preferred_username"] == "alice"
    assert result["userinfo_after_refresh"]["sub"] == result["id_token_claims"]["sub"]
    refresh_token = result["refreshed"]["refresh_token"]
    form = {
        "grant_type": "refresh_token",
        "client_id": peer.clients["none"].client_id,
        "refresh_token": refresh_token,
    }
    ca = peer.server.pki / "ca.crt"
    for other in (None, peer.m["victim"]):  # no certificate, another one: refused, nothing rotated
        verify = other.ssl_context(ca) if other is not None else ssl.create_default_context(cafile=str(ca))
        with httpx.Client(verify=verify, timeout=10) as http:
            refused = http.post(peer.mtls_url + "/token", data=form)
        assert refused.status_code == 400
        assert refused.json()["error"] == "invalid_grant"
    with httpx.Client(verify=cert.ssl_context(ca), timeout=10) as http:
        renewed = http.post(peer.mtls_url + "/token", data=form)
    assert renewed.status_code == 200, renewed.text
