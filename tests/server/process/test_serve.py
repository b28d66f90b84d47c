"""`certbound serve` as a user runs it: a real process, real TLS, the dev PKI it creates itself."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.pg_helpers import require_postgres, throwaway_database
from tests.server.process.serverproc import CERTBOUND, RunningServer, free_port, start_server

pytestmark = pytest.mark.slow
AUTH_METHODS = {
    "none",
    "client_secret_basic",
    "client_secret_post",
    "client_secret_jwt",
    "private_key_jwt",
    "tls_client_auth",
    "self_signed_tls_client_auth",
}


def test_dev_server_serves_metadata_with_the_demo_certificate(dev_server: RunningServer) -> None:
    with dev_server.client() as c:
        meta = c.get(dev_server.url + "/.well-known/oauth-authorization-server")
        oidc = c.get(dev_server.url + "/.well-known/openid-configuration").json()
    assert meta.status_code == 200
    doc = meta.json()
    assert doc == oidc
    issuer = dev_server.url
    assert doc["issuer"] == issuer
    for name, path in [("token_endpoint", "/token"), ("introspection_endpoint", "/introspect"),
                       ("revocation_endpoint", "/revoke"), ("jwks_uri", "/jwks"),
                       ("registration_endpoint", "/register")]:  # fmt: skip
        assert doc[name] == issuer + path
    for kind in ("token", "introspection", "revocation"):
        assert set(doc[f"{kind}_endpoint_auth_methods_supported"]) == AUTH_METHODS
        assert "none" not in doc[f"{kind}_endpoint_auth_signing_alg_values_supported"]
    assert doc["tls_client_certificate_bound_access_tokens"] is True
    assert doc["mtls_endpoint_aliases"] == {
        "token_endpoint": issuer + "/token",
        "introspection_endpoint": issuer + "/introspect",
        "revocation_endpoint": issuer + "/revoke",
        "pushed_authorization_request_endpoint": issuer + "/par",
        "userinfo_endpoint": issuer + "/userinfo",
    }
    banner = dev_server.output()
    assert f"certbound is serving {issuer}" in banner
    assert f"--cert {dev_server.pki / 'demo-client.crt'}" in banner
    assert "/.well-known/oauth-authorization-server" in banner


def test_jwks_serves_one_public_key_per_algorithm(dev_server: RunningServer) -> None:
    """ES256 signs the access tokens; RS256 the ID tokens (the OpenID registration default)."""
    with dev_server.client() as c:
        resp = c.get(dev_server.url + "/jwks")
    assert resp.status_code == 200
    keys = resp.json()["keys"]
    assert sorted((k["alg"], k["kty"]) for k in keys) == [("ES256", "EC"), ("RS256", "RSA")]
    for key in keys:
        assert key["kid"]
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key)


def test_key_and_store_survive_a_restart(tmp_path: Path) -> None:
    data = tmp_path / "data"
    first = start_server([], data)
    with first.client() as c:
        kid = c.get(first.url + "/jwks").json()["keys"][0]["kid"]
    assert first.stop() == 0
    second = start_server([], data)
    try:
        with second.client() as c:
            assert c.get(second.url + "/jwks").json()["keys"][0]["kid"] == kid
    finally:
        second.stop()


def test_unknown_path_is_json_not_html(dev_server: RunningServer) -> None:
    with dev_server.client() as c:
        resp = c.get(dev_server.url + "/nope")
        wrong = c.post(dev_server.url + "/jwks")
    assert resp.status_code == 404
    assert resp.json()["error"] == "not_found"
    assert wrong.status_code == 405
    assert wrong.json()["error"] == "invalid_request"


def test_registration_with_the_dev_token(dev_server: RunningServer) -> None:
    token = (dev_server.data_dir / "registration-token").read_text().strip()
    body = {"token_endpoint_auth_method": "client_secret_basic", "grant_types": ["client_credentials"]}
    with dev_server.client(cert=False) as c:
        denied = c.post(dev_server.url + "/register", json=body)
        created = c.post(
            dev_server.url + "/register", json=body, headers={"Authorization": f"Bearer {token}"}
        )
        assert created.status_code == 201, created.text
        reg = created.json()
        read = c.get(reg["registration_client_uri"],
                     headers={"Authorization": f"Bearer {reg['registration_access_token']}"})  # fmt: skip
    assert denied.status_code == 401
    assert reg["client_secret"]
    assert reg["client_id"]
    assert read.status_code == 200
    assert read.json()["client_id"] == reg["client_id"]


def test_mtls_port_gets_the_aliases_and_its_own_listener(tmp_path: Path) -> None:
    mtls_port = free_port()
    server = start_server(["--mtls-port", str(mtls_port)], tmp_path / "data")
    try:
        mtls = f"https://127.0.0.1:{mtls_port}"
        with server.client() as c:
            doc = c.get(server.url + "/.well-known/oauth-authorization-server").json()
            assert c.get(mtls + "/healthz").json() == {"status": "ok"}
        assert doc["mtls_endpoint_aliases"]["token_endpoint"] == mtls + "/token"
        assert doc["token_endpoint"] == server.url + "/token"
        assert _asks_for_client_cert(server, mtls_port)
        assert not _asks_for_client_cert(server, int(server.url.rsplit(":", 1)[1]))
    finally:
        assert server.stop() == 0


def _asks_for_client_cert(server: RunningServer, port: int) -> bool:
    """Whether the listener sends a CertificateRequest (seen by openssl s_client over TLS 1.2)."""
    out = subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{port}",
            "-tls1_2",
            "-CAfile",
            str(server.pki / "ca.crt"),
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=20,
    ).stdout
    return "Client Certificate Types" in out  # printed only when a CertificateRequest arrived


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(x) for x in out.split()]


def test_several_workers_share_the_socket_and_stop_together(tmp_path: Path) -> None:
    server = start_server(["--workers", "2"], tmp_path / "data")
    try:
        deadline = time.monotonic() + 30
        workers: list[int] = []
        while time.monotonic() < deadline:
            # multiprocessing's resource tracker is a child too; workers run certbound's entry point
            workers = [p for p in _children(server.proc.pid)
                       if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()]  # fmt: skip
            if len(workers) == 2:
                break
            time.sleep(0.2)
        assert len(workers) == 2, server.output()
        for _ in range(20):  # new connections are spread over the workers; every one must answer
            with server.client() as c:
                assert c.get(server.url + "/jwks").status_code == 200
    finally:
        assert server.stop(signal.SIGTERM) == 0
    for pid in workers:
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()


def test_sigint_stops_the_server(tmp_path: Path) -> None:
    server = start_server([], tmp_path / "data")
    assert server.stop(signal.SIGINT) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "workers:"),
        (["--issuer", "http://x"], "issuer: must be an https:// URL"),
        (["--tls-cert", "/nonexistent"], "tls_cert and tls_key"),
        (["--database-url", "postgresql://u:pw@127.0.0.1:1/x"], "database_url: cannot open the database"),
    ],
)
def test_bad_settings_stop_startup_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = subprocess.run(
        [*CERTBOUND, "serve", "--dev", "--data-dir", str(tmp_path / "d"), "--port", str(free_port()), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert len(proc.stderr.strip().splitlines()) == 1
    assert ":pw@" not in proc.stderr  # a password in a URL never reaches the output


def test_port_in_use_is_one_line(dev_server: RunningServer, tmp_path: Path) -> None:
    port = dev_server.url.rsplit(":", 1)[1]
    proc = subprocess.run(
        [*CERTBOUND, "serve", "--dev", "--data-dir", str(tmp_path / "d"), "--port", port],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode != 0
    assert f"port: cannot listen on 127.0.0.1:{port}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_environment_and_config_file(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "certbound.toml"
    cfg.write_text(f'port = {free_port()}\nissuer = "https://localhost:{port}"\n')
    env = {"CERTBOUND_PORT": str(port)}
    proc = subprocess.Popen(
        [*CERTBOUND, "serve", "--dev", "--config", str(cfg), "--data-dir", str(tmp_path / "data")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True, env={**os.environ, **env},
    )  # fmt: skip
    server = RunningServer(proc, f"https://127.0.0.1:{port}", tmp_path / "data", tmp_path / "none")
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with server.client() as c:
                    doc = c.get(server.url + "/.well-known/oauth-authorization-server").json()
                break
            except (httpx.HTTPError, OSError):
                assert time.monotonic() < deadline
                assert proc.poll() is None
                time.sleep(0.3)
        assert doc["issuer"] == f"https://localhost:{port}"
    finally:
        server.stop()


@pytest.mark.postgres
def test_serve_on_postgresql_with_two_workers(tmp_path: Path) -> None:
    require_postgres()
    with throwaway_database() as url:
        server = start_server(["--database-url", url, "--workers", "2"], tmp_path / "data")
        try:
            token = (server.data_dir / "registration-token").read_text().strip()
            body = {"token_endpoint_auth_method": "client_secret_post", "grant_types": ["client_credentials"]}
            with server.client(cert=False) as c:
                created = c.post(
                    server.url + "/register", json=body, headers={"Authorization": f"Bearer {token}"}
                )
                assert created.status_code == 201, created.text
                kid = c.get(server.url + "/jwks").json()["keys"][0]["kid"]
        finally:
            assert server.stop() == 0
        assert (tmp_path / "data" / "certbound.db").exists() is False
        again = start_server(["--database-url", url], tmp_path / "data")  # same key from the same database
        try:
            with again.client() as c:
                assert c.get(again.url + "/jwks").json()["keys"][0]["kid"] == kid
        finally:
            again.stop()
