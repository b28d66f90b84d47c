"""`certbound serve` behind real nginx (deploy/nginx/certbound.conf.template): a forwarded certificate
authenticates at /token and binds the token; a header sent directly is ignored; a spoofed header
through nginx is overwritten; an expired certificate is refused by certbound with its reason code."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from certbound.pki.devpki import DEMO_CLIENT_DN
from certbound.pki.issue import issue_client_cert
from certbound.pki.pem import cert_to_pem, key_to_pem, load_cert_file, load_key_file
from certbound.pki.thumbprint import x5t_s256
from tests.proxy.nginxproc import Nginx, client_context, find_nginx, free_port, render_template, run_nginx
from tests.server.process.serverproc import RunningServer, log_events, start_server

pytestmark = pytest.mark.slow

TOKEN_FORM = {"grant_type": "client_credentials", "client_id": "demo-client"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, Nginx]]:
    find_nginx()  # skip (or fail under CI) before starting anything
    base = tmp_path_factory.mktemp("behind-nginx")
    nginx_port = free_port()
    server = start_server(
        ["--trusted-proxy", "127.0.0.1/32", "--forwarded-cert-header", "nginx",
         "--issuer", f"https://localhost:{nginx_port}"],
        base / "data",
    )  # fmt: skip
    try:
        pki = server.pki
        values = {
            "CERTBOUND_UPSTREAM": server.url.removeprefix("https://"),
            "NGINX_LISTEN": f"127.0.0.1:{nginx_port}",
            "NGINX_SERVER_NAME": "localhost",
            "NGINX_TLS_CERT": str(pki / "server.crt"),
            "NGINX_TLS_KEY": str(pki / "server.key"),
            "NGINX_CLIENT_CA": str(pki / "ca.crt"),
            "CERTBOUND_CA": str(pki / "ca.crt"),
            "CERTBOUND_TLS_NAME": "localhost",
        }
        with run_nginx(base / "nginx", render_template(values), nginx_port) as nginx:
            yield server, nginx
    finally:
        server.stop()


def _post(url: str, pki: Path, cert: tuple[Path, Path] | None, headers: dict[str, str] | None = None,
          **transport: Any) -> httpx.Response:  # fmt: skip
    ctx = client_context(pki / "ca.crt", *(cert or (None, None)))
    with httpx.Client(transport=httpx.HTTPTransport(verify=ctx, **transport), timeout=10) as client:
        return client.post(url + "/token", data=TOKEN_FORM, headers=headers or {})


def _demo(pki: Path) -> tuple[Path, Path]:
    return pki / "demo-client.crt", pki / "demo-client.key"


def _events(
    server: RunningServer, event: str, where: Callable[[dict[str, Any]], bool] = bool
) -> list[dict[str, Any]]:
    return log_events(server.output, event, where)


def _claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    data: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return data


def test_a_forwarded_certificate_authenticates_and_binds_the_token(
    stack: tuple[RunningServer, Nginx],
) -> None:
    server, nginx = stack
    response = _post(nginx.url, server.pki, _demo(server.pki))
    assert response.status_code == 200, response.text
    thumbprint = x5t_s256(load_cert_file(server.pki / "demo-client.crt"))
    assert _claims(response.json()["access_token"])["cnf"] == {"x5t#S256": thumbprint}
    requests = _events(server, "request", lambda e: e.get("cert_x5t_s256") == thumbprint)
    assert requests[-1]["cert_source"] == "header:nginx"
    assert requests[-1]["status"] == 200
    assert requests[-1]["client"] == "127.0.0.1"


def test_the_header_sent_directly_is_ignored(stack: tuple[RunningServer, Nginx]) -> None:
    server, _ = stack
    escaped = quote((server.pki / "demo-client.crt").read_text())
    sent = {"X-SSL-Client-Cert": escaped, "X-SSL-Client-Verify": "SUCCESS"}
    response = _post(server.url, server.pki, None, sent, local_address="127.0.0.2")
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    ignored = _events(server, "forwarded_cert_ignored")
    assert ignored
    assert ignored[-1]["peer"] == "127.0.0.2"
    assert ignored[-1]["reason"] == "proxy.untrusted_peer"
    failed = _events(server, "request", lambda e: e["client"] == "127.0.0.2")
    assert failed[-1]["status"] == 401
    assert failed[-1]["reason"] == "cert.missing"


def test_a_spoofed_header_through_nginx_is_overwritten(stack: tuple[RunningServer, Nginx]) -> None:
    server, nginx = stack
    escaped = quote((server.pki / "demo-client.crt").read_text())
    sent = {"X-SSL-Client-Cert": escaped, "X-SSL-Client-Verify": "SUCCESS"}
    response = _post(nginx.url, server.pki, None, sent)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


def test_an_expired_certificate_through_nginx_is_refused_by_certbound(
    stack: tuple[RunningServer, Nginx], tmp_path: Path
) -> None:
    server, nginx = stack
    ca = load_cert_file(server.pki / "ca.crt"), load_key_file(server.pki / "ca.key")
    now = datetime.now(UTC)
    cert, key = issue_client_cert(*ca, DEMO_CLIENT_DN, not_before=now - timedelta(days=9),
                                  not_after=now - timedelta(days=2))  # fmt: skip
    (tmp_path / "expired.crt").write_bytes(cert_to_pem(cert))
    (tmp_path / "expired.key").write_bytes(key_to_pem(key))
    response = _post(nginx.url, server.pki, (tmp_path / "expired.crt", tmp_path / "expired.key"))
    assert response.status_code == 401  # certbound's answer, not nginx's "400 The SSL certificate error"
    assert response.json()["error"] == "invalid_client"
    event = _events(server, "request", lambda e: e.get("cert_x5t_s256") == x5t_s256(cert))[-1]
    assert event["reason"] == "cert.expired"
    assert event["tls_verified"] is False
