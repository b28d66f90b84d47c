"""Certificate descriptions and JWKs with x5c."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc.jwk import import_key

from certbound.pki.describe import describe_cert, key_type
from certbound.pki.issue import issue_client_cert, new_private_key, self_signed_client_cert
from certbound.pki.jwk import jwk_matches_cert, jwk_with_x5c
from certbound.pki.thumbprint import x5t_s256

from .conftest import CertAndKey


def test_describe_cert(root_ca: CertAndKey) -> None:
    start = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    cert, _ = issue_client_cert(
        *root_ca,
        "CN=client,O=Org",
        dns=["c.example"],
        ips=["::1"],
        not_before=start,
        not_after=start + timedelta(days=1),
    )
    info = describe_cert(cert)
    assert info["subject"] == "CN=client,O=Org"
    assert info["issuer"] == "CN=Test Root CA,O=certbound tests"
    assert info["serial"] == format(cert.serial_number, "x")
    assert info["not_before"] == "2030-01-02T03:04:05Z"
    assert info["not_after"] == "2030-01-03T03:04:05Z"
    assert info["key_type"] == "EC P-256"
    assert info["san"] == {"dns": ["c.example"], "uri": [], "ip": ["::1"], "email": []}
    assert info["self_signed"] is False
    assert info["is_ca"] is False
    assert info["x5t#S256"] == x5t_s256(cert)
    json.dumps(info)  # JSON-ready


def test_describe_self_signed_and_ca(root_ca: CertAndKey) -> None:
    assert describe_cert(root_ca[0])["is_ca"] is True
    assert describe_cert(root_ca[0])["self_signed"] is True
    cert, _ = self_signed_client_cert("CN=s", key=new_private_key("ed25519"))
    info = describe_cert(cert)
    assert (info["self_signed"], info["is_ca"], info["key_type"]) == (True, False, "Ed25519")


def test_key_type_names() -> None:
    assert key_type(new_private_key("ec-p384").public_key()) == "EC P-384"
    assert key_type(new_private_key("ed25519")) == "Ed25519"
    assert key_type(new_private_key("rsa-2048").public_key()) == "RSA 2048"
    assert key_type(object()) == "object"


def test_public_jwk_with_x5c(root_ca: CertAndKey) -> None:
    cert, _ = issue_client_cert(*root_ca, "CN=client")
    jwk = jwk_with_x5c(cert, [root_ca[0]], alg="ES256")
    assert jwk["kty"] == "EC"
    assert jwk["crv"] == "P-256"
    assert "d" not in jwk
    assert jwk["use"] == "sig"
    assert jwk["alg"] == "ES256"
    assert jwk["x5c"] == [base64.b64encode(c.public_bytes(Encoding.DER)).decode() for c in (cert, root_ca[0])]
    assert x509.load_der_x509_certificate(base64.b64decode(jwk["x5c"][0])) == cert
    assert jwk["x5t#S256"] == x5t_s256(cert)
    assert jwk["kid"] == import_key({k: jwk[k] for k in ("kty", "crv", "x", "y")}).thumbprint()
    assert jwk_matches_cert(jwk, cert)


def test_private_jwk() -> None:
    cert, key = self_signed_client_cert("CN=s")
    jwk = jwk_with_x5c(cert, private_key=key, kid="k1", use=None)
    assert "d" in jwk
    assert jwk["kid"] == "k1"
    assert "use" not in jwk
    assert jwk_matches_cert(jwk, cert)
    _, other_key = self_signed_client_cert("CN=s")
    with pytest.raises(ValueError, match="not the key of the certificate"):
        jwk_with_x5c(cert, private_key=other_key)


def test_jwk_matches_cert_rejects_other_keys() -> None:
    cert, _ = self_signed_client_cert("CN=a")
    other, _ = self_signed_client_cert("CN=a")
    jwk = jwk_with_x5c(cert)
    assert not jwk_matches_cert(jwk, other)
    # An x5c pointing at another certificate does not change what the JWK's key is.
    forged = dict(jwk, x5c=jwk_with_x5c(other)["x5c"])
    assert jwk_matches_cert(forged, cert)
    assert not jwk_matches_cert(forged, other)


def test_jwk_matches_cert_never_raises() -> None:
    cert, _ = self_signed_client_cert("CN=a")
    assert not jwk_matches_cert({}, cert)
    assert not jwk_matches_cert({"kty": "oct", "k": "AAAA"}, cert)
    assert not jwk_matches_cert({"kty": "EC", "crv": "P-256", "x": "bad", "y": "bad"}, cert)


def test_ed25519_and_rsa_jwks() -> None:
    for kind, kty in (("ed25519", "OKP"), ("rsa-2048", "RSA")):
        cert, key = self_signed_client_cert("CN=k", key=new_private_key(kind))  # type: ignore[arg-type]
        jwk = jwk_with_x5c(cert, private_key=key)
        assert jwk["kty"] == kty
        assert jwk_matches_cert(jwk, cert)
