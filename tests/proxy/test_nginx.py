"""nginx (Debian's, for real) in front of certbound's TLS listener and forwarded-certificate middleware.

The nginx configuration is deploy/nginx/certbound.conf.template, rendered: what is tested is what
is shipped. The backend is trusted for 127.0.0.1/32 only (nginx connects from there); a "direct"
client connects from 127.0.0.2, an address on the same loopback interface that is not trusted.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from certbound.pki.thumbprint import x5t_s256
from certbound.tls.forwarded import ForwardedCertConfig, ForwardedCertificateMiddleware, load_intermediates
from certbound.tls.headers import FORMATS
from certbound.tls.headers.rfc9440 import encode_byte_sequence
from tests.proxy.conftest import Cred, ProxyPKI, echo_app, serve_tls
from tests.proxy.nginxproc import Nginx, client_context, free_port, render_template, run_nginx

pytestmark = pytest.mark.slow


def _escaped(cred: Cred) -> str:
    from urllib.parse import quote

    return quote(
        cred.certfile.read_text().split("-----END CERTIFICATE-----")[0] + "-----END CERTIFICATE-----\n"
    )


@pytest.fixture(scope="module")
def backend(proxy_pki: ProxyPKI) -> Iterator[int]:
    import ipaddress

    config = ForwardedCertConfig(
        trusted_proxies=(ipaddress.ip_network("127.0.0.1/32"),),
        header_format=FORMATS["nginx"],
        intermediates=load_intermediates(proxy_pki.intermediates),
    )
    with serve_tls(ForwardedCertificateMiddleware(echo_app, config), proxy_pki) as port:
        yield port


def _values(pki: ProxyPKI, listen: int, upstream: int) -> dict[str, str]:
    return {
        "CERTBOUND_UPSTREAM": f"127.0.0.1:{upstream}",
        "NGINX_LISTEN": f"127.0.0.1:{listen}",
        "NGINX_SERVER_NAME": "localhost",
        "NGINX_TLS_CERT": str(pki.server_cert),
        "NGINX_TLS_KEY": str(pki.server_key),
        "NGINX_CLIENT_CA": str(pki.client_ca),
        "CERTBOUND_CA": str(pki.server_ca),
        "CERTBOUND_TLS_NAME": "localhost",
    }


@pytest.fixture(scope="module")
def nginx(proxy_pki: ProxyPKI, backend: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Nginx]:
    port = free_port()
    conf = render_template(_values(proxy_pki, port, backend))
    with run_nginx(tmp_path_factory.mktemp("nginx"), conf, port) as running:
        yield running


def _get(
    url: str, pki: ProxyPKI, cred: Cred | None, headers: dict[str, str] | None = None, **transport: Any
) -> Any:
    ctx = client_context(pki.server_ca, cred.certfile if cred else None, cred.keyfile if cred else None)
    with httpx.Client(transport=httpx.HTTPTransport(verify=ctx, **transport), timeout=10) as client:
        response = client.post(
            url + "/token", headers=headers or {}, data={"grant_type": "client_credentials"}
        )
    return response


def _seen(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()
    return data


def test_a_forwarded_certificate_reaches_the_app(nginx: Nginx, proxy_pki: ProxyPKI) -> None:
    seen = _seen(_get(nginx.url, proxy_pki, proxy_pki.trusted))
    cert = seen["certificate"]
    assert cert["x5t"] == x5t_s256(proxy_pki.trusted.cert)
    assert cert["source"] == "header:nginx"
    assert cert["tls_verified"] is True  # nginx's $ssl_client_verify: SUCCESS against NGINX_CLIENT_CA
    assert seen["peer"] == "127.0.0.1"
    # the forwarding headers never reach the application, whatever the format
    assert not {"x-ssl-client-cert", "x-ssl-client-verify", "client-cert"} & set(seen["headers"])


def test_a_self_signed_certificate_passes_nginx_with_its_verdict(nginx: Nginx, proxy_pki: ProxyPKI) -> None:
    cert = _seen(_get(nginx.url, proxy_pki, proxy_pki.self_signed))["certificate"]
    assert cert["x5t"] == x5t_s256(proxy_pki.self_signed.cert)
    assert cert["tls_verified"] is False
    assert cert["tls_error"] == "self-signed certificate"


def test_nginx_forwards_the_leaf_only_and_configured_intermediates_complete_the_chain(
    nginx: Nginx, proxy_pki: ProxyPKI
) -> None:
    for cred in (proxy_pki.chained, proxy_pki.leaf_only):
        cert = _seen(_get(nginx.url, proxy_pki, cred))["certificate"]
        assert cert["x5t"] == x5t_s256(cred.cert)
        assert cert["chain"] == [proxy_pki.intermediate.subject.rfc4514_string()]


def test_a_spoofed_header_through_nginx_is_overwritten(nginx: Nginx, proxy_pki: ProxyPKI) -> None:
    spoof = {
        "X-SSL-Client-Cert": _escaped(proxy_pki.trusted),
        "X-SSL-Client-Verify": "SUCCESS",
        "Client-Cert": encode_byte_sequence(proxy_pki.trusted.cert.public_bytes(_der())),
    }
    # no certificate of its own: nginx sends no certificate header, and drops the client's copies
    assert _seen(_get(nginx.url, proxy_pki, None, spoof))["certificate"] is None
    # a certificate of its own: the application sees that one, not the spoofed one
    cert = _seen(_get(nginx.url, proxy_pki, proxy_pki.self_signed, spoof))["certificate"]
    assert cert["x5t"] == x5t_s256(proxy_pki.self_signed.cert)
    assert cert["tls_verified"] is False


def test_the_same_header_sent_directly_is_ignored_and_logged(backend: int, proxy_pki: ProxyPKI) -> None:
    spoof = {"X-SSL-Client-Cert": _escaped(proxy_pki.trusted), "X-SSL-Client-Verify": "SUCCESS"}
    url = f"https://127.0.0.1:{backend}"
    with structlog.testing.capture_logs() as logs:
        seen = _seen(_get(url, proxy_pki, None, spoof, local_address="127.0.0.2"))
    assert seen["peer"] == "127.0.0.2"
    assert seen["certificate"] is None
    assert "x-ssl-client-cert" not in seen["headers"]
    ignored = [e for e in logs if e["event"] == "forwarded_cert_ignored"]
    assert len(ignored) == 1
    assert ignored[0]["reason"] == "proxy.untrusted_peer"
    assert ignored[0]["peer"] == "127.0.0.2"
    # a direct client with its own certificate keeps it (the header is still ignored)
    seen = _seen(_get(url, proxy_pki, proxy_pki.self_signed, spoof, local_address="127.0.0.2"))
    assert seen["certificate"]["source"] == "tls"
    assert seen["certificate"]["x5t"] == x5t_s256(proxy_pki.self_signed.cert)


def test_an_expired_certificate_reaches_certbound_through_the_template(
    nginx: Nginx, proxy_pki: ProxyPKI
) -> None:
    """The shipped template hands nginx's own refusal (495) to certbound, with nginx's verdict."""
    cert = _seen(_get(nginx.url, proxy_pki, proxy_pki.expired))["certificate"]
    assert cert["x5t"] == x5t_s256(proxy_pki.expired.cert)
    assert cert["tls_verified"] is False
    assert cert["tls_error"] == "certificate has expired"


def test_without_the_error_page_nginx_itself_refuses_an_expired_certificate(
    proxy_pki: ProxyPKI, backend: int, tmp_path: Path
) -> None:
    """What nginx answers on its own: optional_no_ca waives unknown issuers and self-signed
    certificates, not expiry. It answers 400 "The SSL certificate error" (internally 495) and never
    calls the upstream."""
    port = free_port()
    conf = render_template(_values(proxy_pki, port, backend))
    conf = conf.replace("error_page 495 = @certbound;", "")
    with run_nginx(tmp_path / "bare", conf, port) as bare:
        response = _get(bare.url, proxy_pki, proxy_pki.expired)
        assert response.status_code == 400
        assert "The SSL certificate error" in response.text
        assert "client SSL certificate verify error: (10:certificate has expired)" in bare.error_log()
        # the same nginx passes a valid certificate
        assert _seen(_get(bare.url, proxy_pki, proxy_pki.trusted))["certificate"]["tls_verified"] is True


def test_the_template_has_no_unfilled_placeholder(proxy_pki: ProxyPKI) -> None:
    conf = render_template(_values(proxy_pki, 1, 2))
    directives = [line for line in conf.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in directives if "${" in line]
    assert "ssl_verify_client optional_no_ca;" in conf
    assert "proxy_set_header X-SSL-Client-Cert   $ssl_client_escaped_cert;" in conf


def _der() -> Any:
    from cryptography.hazmat.primitives.serialization import Encoding

    return Encoding.DER
