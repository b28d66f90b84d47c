"""Degraded TLS mode end to end: the handshake trusts the client CAs plus registered self-signed certs."""

from __future__ import annotations

import ssl
import time
from pathlib import Path

import httpx
import pytest

from certbound.pki.issue import self_signed_client_cert
from certbound.pki.jwk import jwk_with_x5c
from certbound.pki.pem import cert_to_pem, key_to_pem
from tests.server.process.serverproc import RunningServer, start_server

pytestmark = pytest.mark.slow


def client_with(server: RunningServer, cert: Path, key: Path) -> httpx.Client:
    ctx = ssl.create_default_context(cafile=str(server.pki / "ca.crt"))
    ctx.load_cert_chain(str(cert), str(key))
    return httpx.Client(verify=ctx, timeout=10)


def test_registered_self_signed_certificate_is_trusted_after_registration(tmp_path: Path) -> None:
    server = start_server([], tmp_path / "data", env={"CERTBOUND_TLS_MODE": "degraded"})
    try:
        assert "DEGRADED mode" in server.output()
        cert, key = self_signed_client_cert("CN=self-signed client")
        (tmp_path / "ss.crt").write_bytes(cert_to_pem(cert))
        (tmp_path / "ss.key").write_bytes(key_to_pem(key))
        # the CA-issued demo client still authenticates
        with server.client() as c:
            demo = c.post(
                server.url + "/token", data={"grant_type": "client_credentials", "client_id": "demo-client"}
            )
        assert demo.status_code == 200, demo.text
        # an unregistered self-signed certificate does not get through the handshake
        refused = (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError)
        with pytest.raises(refused), client_with(server, tmp_path / "ss.crt", tmp_path / "ss.key") as c:
            c.get(server.url + "/healthz")
        token = (server.data_dir / "registration-token").read_text().strip()
        body = {
            "token_endpoint_auth_method": "self_signed_tls_client_auth",
            "grant_types": ["client_credentials"],
            "jwks": {"keys": [jwk_with_x5c(cert)]},
        }
        with server.client(cert=False) as c:
            reg = c.post(server.url + "/register", json=body, headers={"Authorization": f"Bearer {token}"})
        assert reg.status_code == 201, reg.text
        client_id = reg.json()["client_id"]
        deadline = time.monotonic() + 10  # every worker follows the store within its poll interval
        while True:
            try:
                with client_with(server, tmp_path / "ss.crt", tmp_path / "ss.key") as c:
                    got = c.post(
                        server.url + "/token",
                        data={"grant_type": "client_credentials", "client_id": client_id},
                    )
                break
            except (httpx.ConnectError, httpx.ReadError, httpx.RemoteProtocolError):
                assert time.monotonic() < deadline, "the registered certificate was never trusted"
                time.sleep(0.3)
        assert got.status_code == 200, got.text
    finally:
        server.stop()
