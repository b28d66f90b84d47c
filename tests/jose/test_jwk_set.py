"""jose/jwk_set.py: public JWKs and JWK Sets from others, and which keys may verify a JWS."""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from joserfc.errors import SecurityWarning
from joserfc.jwk import ECKey, OKPKey, RSAKey

from certbound.jose.jwk_set import import_public_jwk, jwk_set_from_response, read_jwk_set
from certbound.pki.issue import self_signed_client_cert
from certbound.pki.jwk import jwk_with_x5c
from certbound.pki.thumbprint import x5t_s256


def public(key: Any, **members: Any) -> dict[str, Any]:
    return {**key.as_dict(private=False), **members}


def weak_rsa() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SecurityWarning)
        return public(RSAKey.generate_key(1024, private=True))


def test_import() -> None:
    key = ECKey.generate_key("P-256", private=True)
    imported = import_public_jwk(public(key, kid="a", use="sig", alg="ES256"))
    assert (imported.kid, imported.use, imported.alg) == ("a", "sig", "ES256")
    assert imported.thumbprint == key.thumbprint()


@pytest.mark.parametrize(
    ("jwk", "match"),
    [
        ({"kty": "oct", "k": "AAAA"}, "not an EC, RSA or OKP JWK"),
        (dict(ECKey.generate_key("P-256", private=True).as_dict(private=True)), "private key material"),
        (public(ECKey.generate_key("P-256", private=True), kid=""), "kid is not a non-empty string"),
        (public(ECKey.generate_key("P-256", private=True), use=1), "use is not a string"),
        (public(ECKey.generate_key("P-256", private=True), alg=["ES256"]), "alg is not a string"),
        ({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}, "not a valid public key"),
        (weak_rsa(), "RSA key of 1024 bits"),
    ],
)
def test_import_refusals(jwk: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        import_public_jwk(jwk)


def test_read_a_set_skips_what_it_cannot_use() -> None:
    cert, _ = self_signed_client_cert("CN=x5c")
    other = ECKey.generate_key("P-256", private=True)
    good = ECKey.generate_key("P-256", private=True)
    contradictory = {**public(other), "x5c": jwk_with_x5c(cert)["x5c"]}
    jwks = read_jwk_set([public(good), {"kty": "oct", "k": "AAAA"}, jwk_with_x5c(cert), contradictory])
    assert [k.thumbprint for k in jwks.keys] == [
        good.thumbprint(),
        import_public_jwk(jwk_with_x5c(cert)).thumbprint,
    ]
    assert [x5t_s256(c) for c in jwks.certificates] == [x5t_s256(cert)]
    assert [p.split(":")[0] for p in jwks.problems] == ["keys[1]", "keys[3]"]


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"<html>", "not JSON"),
        (b'{"keys": {}}', "not a JWK Set"),
        (b"[]", "not a JWK Set"),
        (b"\xff", "not JSON"),
        (b"[" * 5000 + b"]" * 5000, "not JSON"),  # deeper than the JSON parser recurses
    ],
)
def test_documents(body: bytes, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        jwk_set_from_response(body)


def test_candidates() -> None:
    a = ECKey.generate_key("P-256", private=True)
    b = ECKey.generate_key("P-256", private=True)
    ed = OKPKey.generate_key("Ed25519", private=True)
    enc = ECKey.generate_key("P-256", private=True)
    jwks = read_jwk_set(
        [
            public(a, kid="a", alg="ES256"),
            public(b),
            public(ed, kid="ed", alg="EdDSA"),
            public(enc, use="enc"),
        ]
    )
    assert [k.thumbprint() for k in jwks.candidates("a", "ES256")] == [a.thumbprint()]
    assert jwks.candidates("a", "ES384") == []  # the key says ES256
    assert [k.thumbprint() for k in jwks.candidates(b.thumbprint(), "ES256")] == [b.thumbprint()]
    assert [k.thumbprint() for k in jwks.candidates("ed", "Ed25519")] == [
        ed.thumbprint()
    ]  # one alg, two names
    assert enc.thumbprint() not in [k.thumbprint() for k in jwks.candidates(None, "ES256")]
    assert len(jwks.candidates(None, "ES256")) == 2  # a and b; the enc key is not for signatures
