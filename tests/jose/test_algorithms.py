"""Signing-key generation: one key per algorithm, kid = RFC 7638 thumbprint, private part sealed."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime

import pytest

from certbound.jose.algorithms import (
    PRIVATE_JWK_MEMBERS,
    RSA_KEY_SIZE,
    SIGNING_ALGS,
    algorithm_spec,
    generate_signing_key,
)
from certbound.sealing import Sealer, SealingError
from certbound.store.records import SigningKey

REQUIRED_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}


def rfc7638_thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 section 3: the required members, sorted, no whitespace, SHA-256, base64url."""
    members = {name: jwk[name] for name in REQUIRED_MEMBERS[jwk["kty"]]}
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode()


def test_rfc7638_helper_matches_the_rfc_example() -> None:
    """RFC 7638 section 3.1's example key and thumbprint, so the helper itself is right."""
    jwk = {
        "kty": "RSA",
        "n": (
            "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECP"
            "ebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY3"
            "68QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4"
            "lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw"
        ),
        "e": "AQAB",
    }
    assert rfc7638_thumbprint(jwk) == "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"


@pytest.mark.parametrize("alg", sorted(SIGNING_ALGS))
def test_generated_key(alg: str, keys_by_alg: dict[str, SigningKey], sealer: Sealer, now: datetime) -> None:
    key = keys_by_alg[alg]
    spec = SIGNING_ALGS[alg]
    assert key.alg == alg
    assert key.kid == rfc7638_thumbprint(key.public_jwk)
    assert key.public_jwk["kid"] == key.kid
    assert key.public_jwk["alg"] == alg
    assert key.public_jwk["use"] == "sig"
    assert key.public_jwk["kty"] == spec.kty
    if spec.crv is not None:
        assert key.public_jwk["crv"] == spec.crv
    else:
        n = base64.urlsafe_b64decode(key.public_jwk["n"] + "==")
        assert len(n) * 8 == RSA_KEY_SIZE
    assert not PRIVATE_JWK_MEMBERS & key.public_jwk.keys()
    assert key.created_at == key.activated_at == now
    assert key.retired_at is None
    assert key.publish_until is None

    private = json.loads(sealer.open(key.private_jwk_sealed, aad=key.kid.encode()))
    assert "d" in private
    assert {name: private[name] for name in key.public_jwk} == key.public_jwk
    assert private["d"] not in key.private_jwk_sealed


def test_private_jwk_is_bound_to_its_kid(keys_by_alg: dict[str, SigningKey], sealer: Sealer) -> None:
    es256, ed = keys_by_alg["ES256"], keys_by_alg["EdDSA"]
    with pytest.raises(SealingError):
        sealer.open(es256.private_jwk_sealed, aad=ed.kid.encode())


def test_next_key_is_not_activated(sealer: Sealer, now: datetime) -> None:
    key = generate_signing_key("ES256", now=now, sealer=sealer)
    assert key.state == "next"
    assert key.activated_at is None
    assert key.created_at == now


def test_keys_differ(sealer: Sealer, now: datetime) -> None:
    first = generate_signing_key("EdDSA", now=now, sealer=sealer)
    second = generate_signing_key("EdDSA", now=now, sealer=sealer)
    assert first.kid != second.kid


@pytest.mark.parametrize("alg", ["HS256", "none", "RS512", "es256", ""])
def test_unsupported_algorithm(alg: str, sealer: Sealer, now: datetime) -> None:
    with pytest.raises(ValueError, match="unsupported signing algorithm"):
        generate_signing_key(alg, now=now, sealer=sealer)
    with pytest.raises(ValueError, match="ES256"):
        algorithm_spec(alg)


def test_one_list_of_algorithms() -> None:
    """Registration, the metadata document, the client and the settings read the lists here."""
    from typing import get_args

    from certbound.auth_methods import METHODS
    from certbound.client import assertions as client_assertions
    from certbound.config import Settings
    from certbound.jose.algorithms import (
        ASSERTION_SIGNING_ALGS,
        ASYMMETRIC_ALGS,
        EC_CURVE_ALGS,
        HMAC_ALGS,
        REGISTRABLE_ASYMMETRIC_ALGS,
    )
    from certbound.server.clients import metadata as registration
    from certbound.server.endpoints.metadata import build_metadata

    assert ASSERTION_SIGNING_ALGS == (
        "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA",
        "HS256", "HS384", "HS512",
    )  # fmt: skip
    assert frozenset(ASSERTION_SIGNING_ALGS) == registration.SIGNING_ALGS
    assert frozenset(HMAC_ALGS) == registration.HMAC_SIGNING_ALGS
    assert frozenset(REGISTRABLE_ASYMMETRIC_ALGS) == registration.ASYMMETRIC_SIGNING_ALGS
    assert frozenset(REGISTRABLE_ASYMMETRIC_ALGS) | {"Ed25519"} == ASYMMETRIC_ALGS
    assert client_assertions.HMAC_ALGS is HMAC_ALGS
    assert client_assertions.EC_CURVE_ALGS is EC_CURVE_ALGS
    document = build_metadata(
        Settings(issuer="https://as.example", mtls_port=8444), grant_types=(), auth_methods=METHODS
    )
    for endpoint in ("token", "introspection", "revocation"):
        assert document[f"{endpoint}_endpoint_auth_signing_alg_values_supported"] == list(
            ASSERTION_SIGNING_ALGS
        )
    # the settings name every signing algorithm but Ed25519 (EdDSA is the name they use for it)
    assert set(get_args(Settings.model_fields["signing_alg"].annotation)) == set(SIGNING_ALGS) - {"Ed25519"}
