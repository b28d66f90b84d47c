"""The forwarded-certificate middleware, called directly with ASGI scopes: who is trusted, what is
replaced, what is stripped, and that nothing a proxy or client sends becomes a 500."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from certbound.config import load_settings
from certbound.pki.issue import create_ca, issue_client_cert, self_signed_client_cert
from certbound.pki.pem import cert_to_pem
from certbound.pki.thumbprint import x5t_s256
from certbound.tls.client_certificate import SCOPE_KEY, ClientCertificate, client_certificate_from_scope
from certbound.tls.forwarded import ForwardedCertConfig, ForwardedCertificateMiddleware, load_intermediates
from certbound.tls.headers import FORMATS, HeaderFormat
from tests.tls_server import undecodable_issuer, undecodable_subject

ROOT = create_ca("CN=Fwd Root")
INTER = create_ca("CN=Fwd Intermediate", issuer=ROOT, path_length=0)
LEAF, _ = issue_client_cert(*INTER, "CN=forwarded")
NATIVE, _ = self_signed_client_cert("CN=the proxy's own certificate")
ESCAPED = quote(cert_to_pem(LEAF).decode())


def config(
    fmt: str = "nginx", cidrs: tuple[str, ...] = ("10.0.0.0/8", "::1/128"), **kw: Any
) -> ForwardedCertConfig:
    return ForwardedCertConfig(tuple(ipaddress.ip_network(c) for c in cidrs), FORMATS[fmt], **kw)


async def run(mw: ForwardedCertificateMiddleware, peer: str | None, headers: list[tuple[bytes, bytes]],
              native: ClientCertificate | None = None) -> dict[str, Any]:  # fmt: skip
    seen: dict[str, Any] = {}

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen["scope"] = scope

    mw.app = app
    scope: dict[str, Any] = {
        "type": "http",
        "client": (peer, 1234) if peer else None,
        "headers": [(b"host", b"x"), *headers],
    }
    if native is not None:
        scope["extensions"] = {"tls": {SCOPE_KEY: native, "tls_version": 0x0304}}
    await mw(scope, None, None)  # type: ignore[arg-type]
    return dict(seen["scope"])


NGINX_HEADERS = [(b"x-ssl-client-cert", ESCAPED.encode()), (b"x-ssl-client-verify", b"SUCCESS")]


def native_cert() -> ClientCertificate:
    return ClientCertificate.from_der(NATIVE.public_bytes(Encoding.DER), source="tls", tls_verified=False,
                                      tls_error="self-signed certificate")  # fmt: skip


async def test_trusted_proxy_header_replaces_the_native_certificate() -> None:
    scope = await run(
        ForwardedCertificateMiddleware(None, config()), "10.1.2.3", NGINX_HEADERS, native_cert()
    )  # type: ignore[arg-type]
    cert = client_certificate_from_scope(scope)
    assert cert is not None
    assert cert.leaf == LEAF
    assert cert.source == "header:nginx"
    assert scope["extensions"]["tls"]["tls_version"] == 0x0304  # the rest of the connection's facts stay
    assert scope["extensions"]["tls"]["client_cert_name"] == "CN=forwarded"
    assert scope["headers"] == [(b"host", b"x")]


async def test_trusted_proxy_without_header_means_no_certificate_not_the_proxys() -> None:
    scope = await run(ForwardedCertificateMiddleware(None, config()), "10.1.2.3", [], native_cert())  # type: ignore[arg-type]
    assert client_certificate_from_scope(scope) is None


async def test_untrusted_peer_keeps_its_tls_certificate_and_loses_the_headers() -> None:
    mw = ForwardedCertificateMiddleware(None, config())  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs:
        scope = await run(mw, "192.0.2.1", [*NGINX_HEADERS, (b"client-cert", b":AAAA:")], native_cert())
    cert = client_certificate_from_scope(scope)
    assert cert is not None
    assert cert.source == "tls"
    assert scope["headers"] == [(b"host", b"x")]
    assert logs == [
        {
            "event": "forwarded_cert_ignored",
            "peer": "192.0.2.1",
            "headers": ["client-cert", "x-ssl-client-cert", "x-ssl-client-verify"],
            "reason": "proxy.untrusted_peer",
            "log_level": "warning",
        }
    ]


@pytest.mark.parametrize("peer", [None, "192.0.2.1", "not-an-address", "/run/certbound.sock", "::2"])
async def test_nothing_but_a_trusted_address_is_trusted(peer: str | None) -> None:
    scope = await run(ForwardedCertificateMiddleware(None, config()), peer, NGINX_HEADERS)  # type: ignore[arg-type]
    assert client_certificate_from_scope(scope) is None


async def test_ipv6_and_ipv4_mapped_peers() -> None:
    mw = ForwardedCertificateMiddleware(None, config())  # type: ignore[arg-type]
    for peer in ("::1", "::ffff:10.0.0.1"):
        assert client_certificate_from_scope(await run(mw, peer, NGINX_HEADERS)) is not None


async def test_no_trusted_proxies_configured_strips_and_ignores() -> None:
    mw = ForwardedCertificateMiddleware(None, ForwardedCertConfig())  # type: ignore[arg-type]
    scope = await run(mw, "127.0.0.1", NGINX_HEADERS)
    assert client_certificate_from_scope(scope) is None
    assert scope["headers"] == [(b"host", b"x")]


async def test_malformed_header_from_a_trusted_proxy_is_no_certificate_and_a_reason() -> None:
    mw = ForwardedCertificateMiddleware(None, config())  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs:
        bad = [(b"x-ssl-client-cert", b"%ff"), (b"x-ssl-client-verify", b"SUCCESS")]
        scope = await run(mw, "10.0.0.1", bad, native_cert())
    assert client_certificate_from_scope(scope) is None
    assert [e["reason"] for e in logs] == ["proxy.malformed_header"]
    assert logs[0]["event"] == "forwarded_cert_rejected"


async def test_a_reader_bug_is_not_a_500() -> None:
    def broken(headers: Any) -> None:
        raise KeyError("bug")

    fmt = FORMATS["nginx"]
    cfg = ForwardedCertConfig(
        config().trusted_proxies, HeaderFormat(fmt.name, fmt.source, fmt.headers, broken)
    )
    with structlog.testing.capture_logs() as logs:
        scope = await run(ForwardedCertificateMiddleware(None, cfg), "10.0.0.1", NGINX_HEADERS)  # type: ignore[arg-type]
    assert client_certificate_from_scope(scope) is None
    assert logs[0]["reason"] == "proxy.malformed_header"


async def test_configured_intermediates_are_added_once(tmp_path: Path) -> None:
    bundle = tmp_path / "intermediates.pem"
    bundle.write_bytes(cert_to_pem(INTER[0]))
    mw = ForwardedCertificateMiddleware(None, config(intermediates=load_intermediates(bundle)))  # type: ignore[arg-type]
    cert = client_certificate_from_scope(await run(mw, "10.0.0.1", NGINX_HEADERS))
    assert cert is not None
    assert cert.chain == (INTER[0],)
    # a chain that already holds it (RFC 9440 with Client-Cert-Chain) does not get it twice
    from certbound.tls.headers.rfc9440 import encode_byte_sequence

    mw = ForwardedCertificateMiddleware(None, config("rfc9440", intermediates=(INTER[0],)))  # type: ignore[arg-type]
    headers = [
        (b"client-cert", encode_byte_sequence(LEAF.public_bytes(Encoding.DER)).encode()),
        (b"client-cert-chain", encode_byte_sequence(INTER[0].public_bytes(Encoding.DER)).encode()),
    ]
    cert = client_certificate_from_scope(await run(mw, "10.0.0.1", headers))
    assert cert is not None
    assert cert.chain == (INTER[0],)


def test_intermediates_must_be_ca_certificates(tmp_path: Path) -> None:
    bundle = tmp_path / "bad.pem"
    bundle.write_bytes(cert_to_pem(LEAF))
    with pytest.raises(ValueError, match=r"forwarded_cert_intermediates: 'CN=forwarded' .* is not a CA"):
        load_intermediates(bundle)
    (tmp_path / "empty.pem").write_text("nothing")
    with pytest.raises(ValueError, match="forwarded_cert_intermediates"):
        load_intermediates(tmp_path / "empty.pem")


async def test_parsed_headers_are_cached_per_value() -> None:
    mw = ForwardedCertificateMiddleware(None, config(), cache_size=2)  # type: ignore[arg-type]
    first = client_certificate_from_scope(await run(mw, "10.0.0.1", NGINX_HEADERS))
    second = client_certificate_from_scope(await run(mw, "10.0.0.1", NGINX_HEADERS))
    assert first is second
    failed = [
        (b"x-ssl-client-cert", ESCAPED.encode()),
        (b"x-ssl-client-verify", b"FAILED:certificate has expired"),
    ]
    third = client_certificate_from_scope(await run(mw, "10.0.0.1", failed))
    assert third is not None
    assert third.tls_error == "certificate has expired"


def test_from_settings(tmp_path: Path) -> None:
    bundle = tmp_path / "intermediates.pem"
    bundle.write_bytes(cert_to_pem(INTER[0]))
    flags = {"trusted_proxies": ["127.0.0.1", "10.0.0.0/8"], "forwarded_cert_header": "envoy-xfcc"}
    settings = load_settings({"dev": True, "forwarded_cert_intermediates": bundle, **flags})
    cfg = ForwardedCertConfig.from_settings(settings)
    assert cfg.trusts("127.0.0.1")
    assert not cfg.trusts("127.0.0.2")
    assert cfg.header_format is FORMATS["envoy-xfcc"]
    assert cfg.intermediates == (INTER[0],)
    assert ForwardedCertConfig.from_settings(load_settings({"dev": True})).header_format is None


async def test_in_a_starlette_app() -> None:
    async def show(request: Request) -> JSONResponse:
        cert = client_certificate_from_scope(request.scope)
        return JSONResponse({"x5t": cert.x5t_s256 if cert else None, "headers": list(request.headers)})

    app = ForwardedCertificateMiddleware(Starlette(routes=[Route("/", show)]), config())
    sent = {"X-SSL-Client-Cert": ESCAPED, "X-SSL-Client-Verify": "SUCCESS"}
    for peer, expected in (("10.9.9.9", x5t_s256(LEAF)), ("192.0.2.9", None)):
        transport = httpx.ASGITransport(app, client=(peer, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            body = (await client.get("/", headers=sent)).json()
        assert body["x5t"] == expected
        assert "x-ssl-client-cert" not in body["headers"]


def _forwarded(cert: x509.Certificate) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-ssl-client-cert", quote(cert_to_pem(cert).decode()).encode()),
        (b"x-ssl-client-verify", b"SUCCESS"),
    ]


async def test_a_subject_that_does_not_decode_is_no_certificate_and_a_reason_not_a_500() -> None:
    """cryptography loads such a certificate and raises only when the subject is read: here, where it
    escaped this middleware as a 500."""
    mw = ForwardedCertificateMiddleware(None, config())  # type: ignore[arg-type]
    with structlog.testing.capture_logs() as logs:
        scope = await run(mw, "10.0.0.1", _forwarded(undecodable_subject()[0]))
    assert client_certificate_from_scope(scope) is None
    assert scope["extensions"]["tls"]["client_cert_name"] is None
    rejected = ("forwarded_cert_rejected", "proxy.malformed_header")
    assert [(e["event"], e["reason"]) for e in logs] == [rejected]


async def test_an_issuer_that_does_not_decode_is_passed_on_as_the_listener_does() -> None:
    mw = ForwardedCertificateMiddleware(None, config())  # type: ignore[arg-type]
    cert = undecodable_issuer()[0]
    scope = await run(mw, "10.0.0.1", _forwarded(cert))
    found = client_certificate_from_scope(scope)
    assert found is not None
    assert found.x5t_s256 == x5t_s256(cert)
    assert scope["extensions"]["tls"]["client_cert_name"] == "CN=fine"
