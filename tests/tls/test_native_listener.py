"""Native mode: every client certificate completes the handshake and reaches the app, with a verdict."""

from __future__ import annotations

import ssl

import httpx
import pytest

from certbound.pki.pem import cert_to_pem
from certbound.pki.thumbprint import x5t_s256
from certbound.tls import protocol
from certbound.tls.openssl_verify import verify_error_string
from certbound.tls.server_context import ServerContextFactory
from tests.tls_server import undecodable_issuer, undecodable_subject

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
    pki: TestPKI, native_port: int, names_read: list[str]
) -> None:
    """The ASGI ``client_cert_name`` of every connection, written by cryptography once per certificate."""
    for cred in (pki.trusted, pki.untrusted, pki.trusted, pki.untrusted, pki.trusted):
        data = get_json(native_port, client_context(pki, cred))  # a new connection each
        assert data["client_cert_name"] == cred.cert.subject.rfc4514_string()
    assert names_read == [
        pki.trusted.cert.subject.rfc4514_string(),
        pki.untrusted.cert.subject.rfc4514_string(),
    ]


def test_a_certificate_whose_subject_does_not_decode_reaches_the_app_as_none(
    pki: TestPKI, native_port: int
) -> None:
    """OpenSSL takes it (a Latin-1 TeletexString), cryptography cannot read its subject: the handshake
    completes, and the app sees no certificate and why, rather than a connection that fails."""
    cred = pki.write_cred("undecodable-subject", *undecodable_subject())
    before = (protocol.stats.handshakes, protocol.stats.client_certificates, protocol.stats.unusable)
    data = get_json(native_port, client_context(pki, cred))
    after = (protocol.stats.handshakes, protocol.stats.client_certificates, protocol.stats.unusable)
    assert "subject" not in data  # the app got no ClientCertificate
    assert data["object_id"] is None
    assert data["client_cert_name"] is None
    assert data["client_cert_error"] == "certbound: client certificate does not parse"
    assert data["client_cert_chain"] == []
    assert tuple(b - a for a, b in zip(before, after, strict=True)) == (1, 0, 1)


def test_an_issuer_that_does_not_decode_still_gives_the_app_its_certificate(
    pki: TestPKI, native_port: int
) -> None:
    """Only the thumbprint and the subject count at the listener; the issuer is the app's to judge."""
    cert, key = undecodable_issuer()
    data = get_json(native_port, client_context(pki, pki.write_cred("undecodable-issuer", cert, key)))
    assert (data["subject"], data["client_cert_name"]) == ("CN=fine", "CN=fine")
    assert data["x5t"] == x5t_s256(cert)
    assert data["tls_verified"] is False


@pytest.mark.parametrize("version", VERSIONS)
def test_asyncio_loop_too(
    pki: TestPKI, native_factory: ServerContextFactory, version: ssl.TLSVersion
) -> None:
    """asyncio's own SSL protocol also calls connection_made only after the handshake."""
    with serve(native_factory, loop="asyncio") as port:
        data = get_json(port, client_context(pki, pki.untrusted, version))
    _assert_presented(data, pki.untrusted)
    assert data["tls_verified"] is False
