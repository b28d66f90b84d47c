"""Native mode: every client certificate completes the handshake and reaches the app, with a verdict."""

from __future__ import annotations

import ssl
from collections import OrderedDict

import httpx
import pytest
from cryptography import x509

from certbound.pki.pem import cert_to_pem
from certbound.pki.thumbprint import x5t_s256
from certbound.tls import client_certificate, protocol
from certbound.tls.openssl_verify import verify_error_string
from certbound.tls.server_context import ServerContextFactory

from .conftest import Cred, TestPKI, client_context, get_json, serve

# OpenSSL X509_V_ERR_* codes
DEPTH_ZERO_SELF_SIGNED_CERT = 18
CERT_HAS_EXPIRED = 10
UNABLE_TO_GET_ISSUER_CERT_LOCALLY = 20

VERSIONS = [
    pytest.param(ssl.TLSVersion.TLSv1_2, id="tls1.2"),
    pytest.param(ssl.TLSVersion.TLSv1_3, id="tls1.3"),
]


def _assert_presented(data: dict[str, object], cred: Cred) -> None:
    assert data["subject"] == cred.cert.subject.rfc4514_string()
    assert data["client_cert_name"] == data["subject"]
    assert data["x5t"] == x5t_s256(cred.cert)
    assert data["source"] == "tls"
    assert data["chain_subjects"] == [c.subject.rfc4514_string() for c in cred.chain]
    assert data["client_cert_chain"] == [cert_to_pem(c).decode() for c in (cred.cert, *cred.chain)]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(
    ("name", "verified", "error_code"),
    [
        ("trusted", True, None),
        ("self_signed", False, DEPTH_ZERO_SELF_SIGNED_CERT),
        ("expired", False, CERT_HAS_EXPIRED),
        ("untrusted", False, UNABLE_TO_GET_ISSUER_CERT_LOCALLY),
        ("with_intermediate", True, None),
    ],
)
def test_presented_certificate_reaches_the_app(
    pki: TestPKI,
    native_port: int,
    version: ssl.TLSVersion,
    name: str,
    verified: bool,
    error_code: int | None,
) -> None:
    cred: Cred = getattr(pki, name)
    data = get_json(native_port, client_context(pki, cred, version))
    _assert_presented(data, cred)
    assert data["tls_verified"] is verified
    expected_error = verify_error_string(error_code) if error_code is not None else None
    assert data["tls_error"] == expected_error
    assert data["client_cert_error"] == expected_error
    assert data["tls_version"] == {ssl.TLSVersion.TLSv1_2: 0x0303, ssl.TLSVersion.TLSv1_3: 0x0304}[version]
    assert isinstance(data["cipher_suite"], int)
    assert data["server_cert"] == pki.server_cert.read_text()


def test_intermediate_sent_by_the_client_is_seen(pki: TestPKI, native_port: int) -> None:
    data = get_json(native_port, client_context(pki, pki.with_intermediate))
    intermediate = pki.with_intermediate.chain[0]
    assert "Trusted Intermediate" in intermediate.subject.rfc4514_string()
    assert data["chain_subjects"] == [intermediate.subject.rfc4514_string()]
    assert data["client_cert_chain"][1] == cert_to_pem(intermediate).decode()
    assert data["tls_verified"] is True  # the server trusts only the root: the intermediate was used


@pytest.mark.parametrize("version", VERSIONS)
def test_no_certificate(pki: TestPKI, native_port: int, version: ssl.TLSVersion) -> None:
    data = get_json(native_port, client_context(pki, None, version))
    assert data["has_tls"] is True
    assert "subject" not in data
    assert data["object_id"] is None
    assert data["client_cert_chain"] == []
    assert data["client_cert_name"] is None
    assert data["client_cert_error"] is None


def test_keep_alive_parses_the_certificate_once(pki: TestPKI, native_port: int) -> None:
    before_parsed, before_handshakes = protocol.stats.client_certificates, protocol.stats.handshakes
    with httpx.Client(verify=client_context(pki, pki.self_signed), timeout=5) as client:
        first = get_json(native_port, client_context(pki, None), client)
        second = get_json(native_port, client_context(pki, None), client)
    assert first["object_id"] == second["object_id"] is not None
    assert protocol.stats.client_certificates - before_parsed == 1
    assert protocol.stats.handshakes - before_handshakes == 1
    assert first["tls_verified"] is second["tls_verified"] is False


def test_new_connections_with_one_certificate_write_its_subject_once(
    pki: TestPKI, native_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ASGI ``client_cert_name`` of every connection, written by cryptography once per certificate."""
    monkeypatch.setattr(client_certificate, "_subject_names", OrderedDict())
    written: list[str] = []
    write = client_certificate._write_subject

    def spy(leaf: x509.Certificate) -> str:
        written.append(write(leaf))
        return written[-1]

    monkeypatch.setattr(client_certificate, "_write_subject", spy)
    for cred in (pki.trusted, pki.untrusted, pki.trusted, pki.untrusted, pki.trusted):
        data = get_json(native_port, client_context(pki, cred))  # a new connection each
        assert data["client_cert_name"] == cred.cert.subject.rfc4514_string()
    assert written == [pki.trusted.cert.subject.rfc4514_string(), pki.untrusted.cert.subject.rfc4514_string()]


@pytest.mark.parametrize("version", VERSIONS)
def test_asyncio_loop_too(
    pki: TestPKI, native_factory: ServerContextFactory, version: ssl.TLSVersion
) -> None:
    """asyncio's own SSL protocol also calls connection_made only after the handshake."""
    with serve(native_factory, loop="asyncio") as port:
        data = get_json(port, client_context(pki, pki.untrusted, version))
    _assert_presented(data, pki.untrusted)
    assert data["tls_verified"] is False
