"""Certificate issuance profiles."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from certbound.pki.issue import (
    create_ca,
    issue_client_cert,
    issue_server_cert,
    new_private_key,
    self_signed_client_cert,
)

from .conftest import CertAndKey


def _ext(cert: x509.Certificate, cls: type[x509.ExtensionType]) -> x509.ExtensionType:
    return cert.extensions.get_extension_for_class(cls).value


def test_new_private_key_kinds() -> None:
    p256 = new_private_key()
    assert isinstance(p256, ec.EllipticCurvePrivateKey)
    assert p256.curve.name == "secp256r1"
    p384 = new_private_key("ec-p384")
    assert isinstance(p384, ec.EllipticCurvePrivateKey)
    assert p384.curve.name == "secp384r1"
    assert isinstance(new_private_key("ed25519"), ed25519.Ed25519PrivateKey)
    with pytest.raises(ValueError, match="unknown key kind"):
        new_private_key("dsa")  # type: ignore[arg-type]


def test_rsa_key_kind() -> None:
    key = new_private_key("rsa-2048")
    assert isinstance(key, rsa.RSAPrivateKey)
    assert key.key_size == 2048


def test_root_ca_profile(root_ca: CertAndKey) -> None:
    cert, key = root_ca
    assert cert.subject == cert.issuer
    bc = _ext(cert, x509.BasicConstraints)
    assert isinstance(bc, x509.BasicConstraints)
    assert bc.ca
    ku = _ext(cert, x509.KeyUsage)
    assert isinstance(ku, x509.KeyUsage)
    assert ku.key_cert_sign
    assert ku.crl_sign
    cert.verify_directly_issued_by(cert)
    assert cert.public_key() == key.public_key()


def test_intermediate_is_signed_by_root(root_ca: CertAndKey, intermediate_ca: CertAndKey) -> None:
    inter, _ = intermediate_ca
    inter.verify_directly_issued_by(root_ca[0])
    bc = _ext(inter, x509.BasicConstraints)
    assert isinstance(bc, x509.BasicConstraints)
    assert bc.path_length == 0
    aki = _ext(inter, x509.AuthorityKeyIdentifier)
    ski = _ext(root_ca[0], x509.SubjectKeyIdentifier)
    assert isinstance(aki, x509.AuthorityKeyIdentifier)
    assert isinstance(ski, x509.SubjectKeyIdentifier)
    assert aki.key_identifier == ski.digest


def test_server_cert_sans_and_eku(root_ca: CertAndKey) -> None:
    cert, _ = issue_server_cert(*root_ca, hosts=["localhost", "127.0.0.1", "::1", "api.example"])
    san = _ext(cert, x509.SubjectAlternativeName)
    assert isinstance(san, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.DNSName) == ["localhost", "api.example"]
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    ]
    eku = _ext(cert, x509.ExtendedKeyUsage)
    assert isinstance(eku, x509.ExtendedKeyUsage)
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    cert.verify_directly_issued_by(root_ca[0])


def test_client_cert_without_san_has_no_san_extension(root_ca: CertAndKey) -> None:
    cert, _ = issue_client_cert(*root_ca, "CN=client,O=Org")
    with pytest.raises(x509.ExtensionNotFound):
        cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    eku = _ext(cert, x509.ExtendedKeyUsage)
    assert isinstance(eku, x509.ExtendedKeyUsage)
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    assert cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    assert cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "client"


def test_client_cert_all_san_kinds(root_ca: CertAndKey) -> None:
    cert, _ = issue_client_cert(
        *root_ca,
        "CN=c",
        dns=["c.example"],
        uris=["spiffe://example/c"],
        ips=["10.0.0.1"],
        emails=["c@example.com"],
    )
    san = _ext(cert, x509.SubjectAlternativeName)
    assert isinstance(san, x509.SubjectAlternativeName)
    assert san.get_values_for_type(x509.DNSName) == ["c.example"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == ["spiffe://example/c"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.1")]
    assert san.get_values_for_type(x509.RFC822Name) == ["c@example.com"]


def test_bad_ip_is_a_value_error(root_ca: CertAndKey) -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        issue_client_cert(*root_ca, "CN=c", ips=["300.1.1.1"])


def test_validity_window_is_settable(root_ca: CertAndKey) -> None:
    start = datetime(2020, 1, 1, tzinfo=UTC)
    cert, _ = issue_client_cert(*root_ca, "CN=old", not_before=start, not_after=start + timedelta(days=1))
    assert cert.not_valid_before_utc == start
    assert cert.not_valid_after_utc == start + timedelta(days=1)
    with pytest.raises(ValueError, match="must be later"):
        issue_client_cert(*root_ca, "CN=bad", not_before=start, not_after=start)


def test_self_signed_client_cert() -> None:
    cert, _ = self_signed_client_cert("CN=self", uris=["https://client.example"])
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)
    bc = _ext(cert, x509.BasicConstraints)
    assert isinstance(bc, x509.BasicConstraints)
    assert not bc.ca
    ca_cert, _ = self_signed_client_cert("CN=self-ca", ca=True)
    bc = _ext(ca_cert, x509.BasicConstraints)
    assert isinstance(bc, x509.BasicConstraints)
    assert bc.ca


def test_ed25519_and_p384_issuers() -> None:
    ed_ca, ed_key = create_ca("CN=ed", key=new_private_key("ed25519"))
    leaf, _ = issue_client_cert(ed_ca, ed_key, "CN=leaf")
    leaf.verify_directly_issued_by(ed_ca)
    p384_ca, p384_key = create_ca("CN=p384", key=new_private_key("ec-p384"))
    leaf2, _ = issue_client_cert(p384_ca, p384_key, "CN=leaf")
    leaf2.verify_directly_issued_by(p384_ca)


def test_needs_subject_or_san(root_ca: CertAndKey) -> None:
    with pytest.raises(ValueError, match="subject DN or at least one"):
        issue_client_cert(*root_ca, x509.Name([]))
    cert, _ = issue_client_cert(*root_ca, x509.Name([]), dns=["only.example"])
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).critical


def test_key_usage_follows_key_type_and_role(root_ca: CertAndKey) -> None:
    """An RSA leaf may encipher keys (TLS 1.2 RSA key exchange); an EC leaf and a CA may not, and
    only a CA (or a self-signed certificate made CA:TRUE on purpose) signs certificates."""

    def usage(cert: x509.Certificate) -> tuple[bool, bool, bool]:
        ku = _ext(cert, x509.KeyUsage)
        assert isinstance(ku, x509.KeyUsage)
        return ku.digital_signature, ku.key_encipherment, ku.key_cert_sign

    rsa_leaf, _ = issue_client_cert(*root_ca, "CN=rsa", key=new_private_key("rsa-2048"))
    ec_leaf, _ = issue_client_cert(*root_ca, "CN=ec")
    rsa_ca, _ = create_ca("CN=rsa ca", key=new_private_key("rsa-2048"))
    self_signed_ca, _ = self_signed_client_cert("CN=ca:true", key=new_private_key("rsa-2048"), ca=True)
    assert usage(rsa_leaf) == (True, True, False)
    assert usage(ec_leaf) == (True, False, False)
    assert usage(rsa_ca) == (True, False, True)
    assert usage(self_signed_ca) == (True, False, True)
