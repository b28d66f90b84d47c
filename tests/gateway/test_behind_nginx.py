"""A second gateway, shaped for production: behind Debian's nginx as its auth_request service
(deploy/nginx/gateway-auth-request.conf.template, rendered and run for real), with a `client_ca` that
proof-of-possession certificates must chain to, two workers, a metrics listener, and a client
certificate rotation towards the IdP. Requests straight to the gateway come from 127.0.0.2, which is
not the trusted proxy (nginx, on 127.0.0.1)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.client.material import CertFiles, Material
from tests.gateway.conftest import IDENTITY
from tests.gateway.echo import Echo
from tests.gateway.gatewayproc import RunningGateway, start_gateway
from tests.gateway.idps import Idp, wait_until
from tests.gateway.test_matrix import echoed, header
from tests.proxy.nginxproc import Nginx, find_nginx, free_port, render_template, run_nginx

pytestmark = pytest.mark.slow

TEMPLATE = Path(__file__).resolve().parents[2] / "deploy" / "nginx" / "gateway-auth-request.conf.template"
NOT_A_PROXY = "127.0.0.2"


@dataclass
class Stack:
    gateway: RunningGateway
    nginx: Nginx
    metrics_url: str


def config(material: Material, echo: Echo, certbound: Idp, metrics_port: int) -> dict[str, Any]:
    headers = {k: v for k, v in IDENTITY.items() if k in ("X-Client-Id", "X-Subject", "X-Scope")}
    route = {"upstream": echo.url, "proof_of_possession_mtls": "strict", "upstream_headers": headers}
    return {
        "workers": 2,
        "metrics_port": metrics_port,
        "listener": {
            "tls_cert": str(material.server.cert_file),
            "tls_key": str(material.server.key_file),
            "client_ca": str(material.ca_file),
            "trusted_proxies": ["127.0.0.1/32"],
            "forwarded_cert_header": "nginx",
        },
        "idp": {
            "issuer": certbound.issuer,
            "client_id": "gateway",
            "tls_client_auth_cert": str(material.gateway.cert_file),
            "tls_client_auth_key": str(material.gateway.key_file),
            # the next certificate, in use since a moment that has passed (after the first one's
            # notBefore, which is its start): the one presented
            "client_certificates": [
                {"cert": str(material.gateway_next.cert_file), "key": str(material.gateway_next.key_file),
                 "use_from": (datetime.now(UTC) - timedelta(seconds=1)).isoformat()},
            ],
            "ca_bundle": str(certbound.ca_file),
        },
        "auth_request": {"path": "/_auth"},
        "routes": [
            {"name": "api", "paths": ["/api"], **route},
            {"name": "api-admin", "paths": ["/api/admin"], **route, "scopes_required": ["admin"]},
            {"name": "introspected", "paths": ["/introspected"], **route, "auth_methods": ["introspection"]},
            {"name": "api-open", "paths": ["/api/open"], **route, "proof_of_possession_mtls": "off"},
        ],
    }  # fmt: skip


@pytest.fixture(scope="module")
def stack(
    material: Material, echo: Echo, idps: dict[str, Idp], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    find_nginx()  # skip (or fail under CI) before starting anything
    base = tmp_path_factory.mktemp("gateway-behind-nginx")
    metrics_port = free_port()
    gateway = start_gateway(
        config(material, echo, idps["certbound"], metrics_port), base / "gateway", ca_file=material.ca_file
    )
    try:
        port = free_port()
        values = {
            "GATEWAY_ADDRESS": gateway.url.removeprefix("https://"),
            "GATEWAY_AUTH_PATH": "/_auth",
            "GATEWAY_CA": str(material.ca_file),
            "GATEWAY_TLS_NAME": "localhost",
            "NGINX_LISTEN": f"127.0.0.1:{port}",
            "NGINX_SERVER_NAME": "localhost",
            "NGINX_TLS_CERT": str(material.server.cert_file),
            "NGINX_TLS_KEY": str(material.server.key_file),
            "NGINX_CLIENT_CA": str(material.ca_file),
            "API_LOCATION": "/api",
            "API_UPSTREAM": echo.url,
        }
        with run_nginx(base / "nginx", render_template(values, TEMPLATE), port) as nginx:
            yield Stack(gateway, nginx, f"http://127.0.0.1:{metrics_port}/metrics")
    finally:
        gateway.stop()


def through_nginx(stack: Stack, material: Material, path: str, token: str | None, cert: CertFiles | None,
                  headers: list[tuple[str, str]] | None = None) -> httpx.Response:  # fmt: skip
    sent = list(headers or [])
    if token is not None:
        sent.append(("Authorization", f"Bearer {token}"))
    with stack.gateway.client(cert) as client:  # the gateway's CA also issued nginx's certificate
        return client.get(stack.nginx.url + path, headers=sent)


def direct(stack: Stack, path: str, token: str | None, cert: CertFiles | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with stack.gateway.client(cert, local_address=NOT_A_PROXY) as client:
        return client.get(stack.gateway.url + path, headers=headers)


def test_a_bound_token_through_nginx(
    stack: Stack, idps: dict[str, Idp], material: Material, echo: Echo
) -> None:
    marker = secrets.token_hex(6)
    response = through_nginx(
        stack, material, f"/api/{marker}", idps["certbound"].token("opaque"), material.tls_client
    )
    body = echoed(response)
    assert body["target"] == f"/api/{marker}"
    assert header(body, "X-Client-Id") == ["api-opaque"]
    assert header(body, "X-Client-Cert-Thumbprint") == [material.tls_client.thumbprint]
    event = stack.gateway.event_for(marker)
    assert (event["mode"], event["outcome"], event["cert_source"]) == (
        "auth_request",
        "allowed",
        "header:nginx",
    )


def test_another_certificate_through_nginx_is_refused(
    stack: Stack, idps: dict[str, Idp], material: Material, echo: Echo
) -> None:
    marker = secrets.token_hex(6)
    token = idps["certbound"].token("jwt")
    response = through_nginx(stack, material, f"/api/{marker}", token, material.second_tls_client)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert echo.reached(marker) == []
    assert stack.gateway.event_for(marker)["reason"] == "binding.mismatch"
    response = through_nginx(stack, material, f"/api/{marker}", None, material.tls_client)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'
    response = through_nginx(stack, material, f"/api/admin/{marker}", token, material.tls_client)
    assert response.status_code == 403
    assert 'error="insufficient_scope"' in response.headers["www-authenticate"]
    assert echo.reached(marker) == []


def test_forged_identity_headers_through_nginx(
    stack: Stack, idps: dict[str, Idp], material: Material
) -> None:
    forged = [("X-Client-Id", "admin"), ("x-client-id", "admin"), ("X_Client_Id", "admin"),
              ("X-Client-Cert-Thumbprint", "forged"), ("X-SSL-Client-Cert", "forged")]  # fmt: skip
    token = idps["certbound"].token("jwt")
    body = echoed(through_nginx(stack, material, "/api/forged", token, material.tls_client, forged))
    assert header(body, "X-Client-Id") == ["api"]
    assert header(body, "X-Client-Cert-Thumbprint") == [material.tls_client.thumbprint]
    assert "admin" not in str(body["headers"])
    assert "forged" not in str(body["headers"])
    assert header(body, "X_Client_Id") == []


def test_decisions_are_for_the_trusted_proxy_only(
    stack: Stack, idps: dict[str, Idp], material: Material
) -> None:
    headers = {"Authorization": f"Bearer {idps['certbound'].token('jwt')}", "X-Original-URI": "/api/x"}
    with stack.gateway.client(material.tls_client, local_address=NOT_A_PROXY) as client:
        response = client.get(stack.gateway.url + "/_auth", headers=headers)
    assert response.status_code == 403
    assert response.json()["error"] == "access_denied"
    assert stack.gateway.events(lambda e: e.get("reason") == "auth_request.untrusted_peer")


def test_client_ca_requires_the_certificate_to_chain(
    stack: Stack, idps: dict[str, Idp], gateway: RunningGateway, material: Material, echo: Echo
) -> None:
    """A token bound to a self-signed certificate, with that certificate: any certificate will do on
    the first gateway (no client_ca: only the thumbprint counts), this one refuses it."""
    token = idps["certbound"].token("self-signed")
    with gateway.client(material.self_signed) as client:
        allowed = client.get(
            f"{gateway.url}/certbound/strict/x", headers={"Authorization": f"Bearer {token}"}
        )
    assert header(echoed(allowed), "X-Client-Cert-Thumbprint") == [material.self_signed.thumbprint]
    marker = secrets.token_hex(6)
    response = direct(stack, f"/api/{marker}", token, material.self_signed)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    assert stack.gateway.event_for(marker)["reason"] == "cert.untrusted"
    assert echo.reached(marker) == []
    echoed(direct(stack, "/api/ok", idps["certbound"].token("jwt"), material.tls_client))


def test_the_next_client_certificate_is_presented(
    stack: Stack, idps: dict[str, Idp], material: Material
) -> None:
    certbound = idps["certbound"]
    echoed(direct(stack, "/introspected/x", certbound.token("opaque"), material.tls_client))
    wait_until(
        lambda: any(
            e["cert_x5t_s256"] == material.gateway_next.thumbprint for e in certbound.introspections()
        )
    )


def test_the_metric(stack: Stack, idps: dict[str, Idp], material: Material) -> None:
    echoed(direct(stack, "/api/metric", idps["certbound"].token("jwt"), material.tls_client))
    direct(stack, "/api/metric", None, material.tls_client)
    text = httpx.get(stack.metrics_url, timeout=10).text
    assert 'certbound_gateway_requests_total{outcome="allowed",reason="ok",route="api"}' in text
    assert 'certbound_gateway_requests_total{outcome="refused",reason="token.missing",route="api"}' in text


def test_the_decision_reads_the_original_uri_as_a_path(
    stack: Stack, idps: dict[str, Idp], material: Material
) -> None:
    """``//evil/api/x`` is not the path ``/api/x`` (a URL parser would take ``evil`` for a host):
    asked by the trusted proxy, the decision for it is a refusal, never the ``api`` route's pass."""
    pem = material.tls_client.cert_file.read_text()
    token = idps["certbound"].token("jwt")
    marker = secrets.token_hex(6)
    with stack.gateway.client(material.tls_client) as client:  # from 127.0.0.1: the trusted proxy
        headers = {"Authorization": f"Bearer {token}", "X-SSL-Client-Cert": quote(pem),
                   "X-SSL-Client-Verify": "SUCCESS"}  # fmt: skip
        allowed = client.get(stack.gateway.url + "/_auth", headers={**headers, "X-Original-URI": "/api/x"})
        assert allowed.status_code == 200
        assert allowed.headers["x-client-cert-thumbprint"] == material.tls_client.thumbprint
        response = client.get(
            stack.gateway.url + "/_auth", headers={**headers, "X-Original-URI": f"//evil/api/{marker}"}
        )
    assert response.status_code == 400
    assert stack.gateway.event_for(marker)["reason"] == "request.bad_path"


def test_a_forged_header_the_gateway_does_not_answer_with_is_dropped_too(
    stack: Stack, idps: dict[str, Idp], material: Material
) -> None:
    """An unbound token on a route with the binding off: the gateway sends no thumbprint, so nginx's
    variable is empty; the caller's own X-Client-Cert-Thumbprint (any case) must still not pass."""
    forged = [("X-Client-Cert-Thumbprint", "forged"), ("x-CLIENT-cert-THUMBPRINT", "forged"),
              ("X-Client-Id", "admin"), ("X-CLIENT-ID", "admin")]  # fmt: skip
    token = idps["certbound"].token("unbound")
    body = echoed(through_nginx(stack, material, "/api/open/x", token, material.tls_client, forged))
    assert header(body, "X-Client-Cert-Thumbprint") == []
    assert header(body, "X-Client-Id") == ["unbound"]
    assert "forged" not in str(body["headers"])
    assert "admin" not in str(body["headers"])
