"""ClientCertificate and reading it from an ASGI scope (ours, or another server's tls extension)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from certbound.pki.issue import self_signed_client_cert
from certbound.pki.pem import cert_to_pem
from certbound.pki.thumbprint import x5t_s256
from certbound.tls import client_certificate
from certbound.tls.client_certificate import (
    SCOPE_KEY,
    ClientCertificate,
    PemChain,
    client_certificate_from_scope,
)
from tests.tls_server import undecodable_issuer, undecodable_subject

from .conftest import TestPKI


def test_from_der(pki: TestPKI) -> None:
    cred = pki.with_intermediate
    der = cred.cert.public_bytes(Encoding.DER)
    cert = ClientCertificate.from_der(
        der,
        [c.public_bytes(Encoding.DER) for c in cred.chain],
        source="tls",
        tls_verified=True,
        tls_error=None,
    )
    assert cert.leaf == cred.cert
    assert cert.chain == cred.chain
    assert cert.der == der
    assert cert.x5t_s256 == x5t_s256(der)
    assert cert.presented == (cred.cert, *cred.chain)
    assert "der" not in repr(cert)


def test_pem_chain_is_lazy_and_compares_as_a_list(pki: TestPKI) -> None:
    chain = PemChain([pki.trusted.cert, pki.self_signed.cert])
    assert chain._pems is None
    assert len(chain) == 2
    assert chain._pems is None
    assert chain[0] == cert_to_pem(pki.trusted.cert).decode()
    assert chain == [cert_to_pem(pki.trusted.cert).decode(), cert_to_pem(pki.self_signed.cert).decode()]
    assert list(chain[1:]) == [cert_to_pem(pki.self_signed.cert).decode()]
    assert PemChain(()) == []


def test_scope_without_tls() -> None:
    assert client_certificate_from_scope({"type": "http"}) is None
    assert client_certificate_from_scope({"type": "http", "extensions": {}}) is None
    assert client_certificate_from_scope({"type": "http", "extensions": {"tls": {}}}) is None


def test_scope_with_our_object(pki: TestPKI) -> None:
    cert = ClientCertificate.from_pem([pki.trusted.pem], source="tls", tls_verified=True, tls_error=None)
    assert client_certificate_from_scope({"extensions": {"tls": {SCOPE_KEY: cert}}}) is cert
    # Explicit None: the listener decided nothing usable was presented; do not re-parse.
    tls = {SCOPE_KEY: None, "client_cert_chain": [pki.trusted.pem]}
    assert client_certificate_from_scope({"extensions": {"tls": tls}}) is None


def test_scope_from_another_asgi_server(pki: TestPKI) -> None:
    tls: dict[str, Any] = {
        "client_cert_chain": [
            pki.with_intermediate.pem,
            cert_to_pem(pki.with_intermediate.chain[0]).decode(),
        ],
        "client_cert_error": "unable to get local issuer certificate",
    }
    scope = {"extensions": {"tls": tls}}
    cert = client_certificate_from_scope(scope)
    assert cert is not None
    assert cert.leaf == pki.with_intermediate.cert
    assert cert.chain == pki.with_intermediate.chain
    assert cert.tls_verified is False
    assert cert.tls_error == "unable to get local issuer certificate"
    assert client_certificate_from_scope(scope) is cert  # parsed once, kept in the server's dict


def test_scope_with_garbage_chain() -> None:
    tls: dict[str, Any] = {
        "client_cert_chain": ["-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"]
    }
    assert client_certificate_from_scope({"extensions": {"tls": tls}}) is None
    assert tls[SCOPE_KEY] is None


def _from(cert: x509.Certificate) -> ClientCertificate:
    return ClientCertificate.from_der(
        cert.public_bytes(Encoding.DER), source="tls", tls_verified=None, tls_error=None
    )


def test_the_subject_name_is_written_once_per_certificate(pki: TestPKI, names_read: list[str]) -> None:
    written = names_read
    first, again = _from(pki.trusted.cert), _from(pki.trusted.cert)  # two connections, one certificate
    other = _from(pki.self_signed.cert)
    assert first.subject_name == again.subject_name == pki.trusted.cert.subject.rfc4514_string()
    assert other.subject_name == pki.self_signed.cert.subject.rfc4514_string()
    assert first.subject_name != other.subject_name
    assert written == [first.subject_name, other.subject_name]


def test_the_remembered_subject_names_are_bounded_least_recently_used_out(
    pki: TestPKI, names_read: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    written = names_read
    monkeypatch.setattr(client_certificate, "_MAX_SUBJECT_NAMES", 2)
    trusted, self_signed, expired = pki.trusted.cert, pki.self_signed.cert, pki.expired.cert
    for cert in (trusted, self_signed, trusted, expired):  # trusted used again: self_signed goes
        assert _from(cert).subject_name == cert.subject.rfc4514_string()
    assert list(client_certificate._subject_names) == [x5t_s256(trusted), x5t_s256(expired)]
    assert _from(self_signed).subject_name == self_signed.subject.rfc4514_string()
    assert len(written) == 4  # trusted, self_signed, expired, and self_signed again


def test_a_long_subject_is_written_each_time_never_kept(names_read: list[str]) -> None:
    """A client chooses its subject: a huge one (~100 KB fits in a handshake) must not stay in memory."""
    written = names_read
    units = [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, f"{i:02d}" + "x" * 60) for i in range(20)]
    cert, _ = self_signed_client_cert(x509.Name(units))
    assert len(cert.subject.rfc4514_string()) > client_certificate.MAX_KEPT_NAME
    assert _from(cert).subject_name == _from(cert).subject_name == cert.subject.rfc4514_string()
    assert len(written) == 2
    assert not client_certificate._subject_names


def test_a_subject_that_does_not_decode_raises_and_is_not_kept(names_read: list[str]) -> None:
    cert = _from(undecodable_subject()[0])
    for _ in range(2):
        with pytest.raises(ValueError, match="subject"):
            cert.subject_name  # noqa: B018 - the property is what is tested
    assert not names_read
    assert not client_certificate._subject_names


def test_an_issuer_that_does_not_decode_is_no_concern_of_the_subject_name(names_read: list[str]) -> None:
    assert _from(undecodable_issuer()[0]).subject_name == "CN=fine"
    assert names_read == ["CN=fine"]
