"""The JWS algorithms certbound knows, in one place, and making a new signing key for one of them.

Which algorithms the server signs its own tokens with and which key each needs (:data:`SIGNING_ALGS`),
and which algorithms it accepts from others: client assertions (:data:`HMAC_ALGS`,
:data:`ASYMMETRIC_ALGS`), what registration lets a client choose and what the metadata document
announces (:data:`ASSERTION_SIGNING_ALGS`). Every other module imports these, so the settings, key
generation, the signer, the verifiers, registration and the metadata document cannot disagree.

RSA keys are 2048 bits: the size NIST allows through 2030 and what every relying party accepts;
generating and signing with 3072 bits costs about 3x for no gain against today's attacks (ES256 is
the default anyway).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal

from joserfc.jwk import ECKey, Key, OKPKey, RSAKey

if TYPE_CHECKING:  # the lists here are read by the outbound client too, which needs no store
    from certbound.sealing import Sealer
    from certbound.store.records import SigningKey

__all__ = [
    "ASSERTION_SIGNING_ALGS",
    "ASYMMETRIC_ALGS",
    "DEFAULT_SIGNING_ALG",
    "EC_CURVE_ALGS",
    "EDDSA_NAMES",
    "HMAC_ALGS",
    "PRIVATE_JWK_MEMBERS",
    "REGISTRABLE_ASYMMETRIC_ALGS",
    "RSA_KEY_SIZE",
    "SIGNING_ALGS",
    "AlgorithmSpec",
    "algorithm_spec",
    "generate_signing_key",
    "public_jwk",
]

RSA_KEY_SIZE = 2048
DEFAULT_SIGNING_ALG = "ES256"

#: JWK members that carry private key material (RFC 7518 section 6, RFC 8037): never published.
PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


@dataclass(frozen=True)
class AlgorithmSpec:
    """What key a JWS algorithm signs with: ``kty`` plus the curve (EC, OKP) or modulus size (RSA)."""

    alg: str
    kty: Literal["EC", "RSA", "OKP"]
    crv: str | None = None
    size: int | None = None


#: Supported signing algorithms by JWS ``alg`` name. ``EdDSA`` is the RFC 8037 name most relying
#: parties know; RFC 9864 deprecates it in favour of the fully specified ``Ed25519`` (also accepted).
SIGNING_ALGS: dict[str, AlgorithmSpec] = {
    "ES256": AlgorithmSpec("ES256", "EC", crv="P-256"),
    "ES384": AlgorithmSpec("ES384", "EC", crv="P-384"),
    "RS256": AlgorithmSpec("RS256", "RSA", size=RSA_KEY_SIZE),
    "PS256": AlgorithmSpec("PS256", "RSA", size=RSA_KEY_SIZE),
    "EdDSA": AlgorithmSpec("EdDSA", "OKP", crv="Ed25519"),
    "Ed25519": AlgorithmSpec("Ed25519", "OKP", crv="Ed25519"),
}


#: The HMAC algorithms (``client_secret_jwt``): the key is a shared secret, never a public key.
HMAC_ALGS: Final = ("HS256", "HS384", "HS512")

#: The asymmetric algorithms a client may register for its assertions and the server announces, in the
#: order of the metadata document.
REGISTRABLE_ASYMMETRIC_ALGS: Final = (
    "ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA",
)  # fmt: skip

#: ``*_endpoint_auth_signing_alg_values_supported`` in the metadata document (RFC 8414), in its order.
ASSERTION_SIGNING_ALGS: Final = REGISTRABLE_ASYMMETRIC_ALGS + HMAC_ALGS

#: The asymmetric algorithms a signature is verified with: the registrable ones, plus ``Ed25519``, the
#: RFC 9864 name of what registration calls ``EdDSA``.
ASYMMETRIC_ALGS: Final = frozenset((*REGISTRABLE_ASYMMETRIC_ALGS, "Ed25519"))

#: The two names of an Ed25519 signature: a key registered for one verifies the other.
EDDSA_NAMES: Final = frozenset({"EdDSA", "Ed25519"})

#: The algorithm a client signs with by default for an EC key on each curve (RFC 7518 section 3.4,
#: RFC 8812 for secp256k1).
EC_CURVE_ALGS: Final = {"P-256": "ES256", "P-384": "ES384", "P-521": "ES512", "secp256k1": "ES256K"}


def algorithm_spec(alg: str) -> AlgorithmSpec:
    """The spec of a supported `alg`; a ValueError naming the supported ones otherwise."""
    try:
        return SIGNING_ALGS[alg]
    except KeyError:
        raise ValueError(
            f"unsupported signing algorithm {alg!r}; choose one of {', '.join(SIGNING_ALGS)}"
        ) from None


def _generate(spec: AlgorithmSpec) -> Key:
    if spec.kty == "EC":
        assert spec.crv is not None
        return ECKey.generate_key(spec.crv)
    if spec.kty == "RSA":
        return RSAKey.generate_key(spec.size)
    assert spec.crv == "Ed25519"
    return OKPKey.generate_key("Ed25519")


def public_jwk(key: Key, **params: Any) -> dict[str, Any]:
    """The public JWK of `key` plus `params`, with every private member removed."""
    jwk: dict[str, Any] = dict(key.as_dict(private=False))
    jwk.update(params)
    for member in PRIVATE_JWK_MEMBERS:
        jwk.pop(member, None)
    return jwk


def generate_signing_key(
    alg: str,
    *,
    now: datetime,
    state: Literal["next", "active"] = "next",
    sealer: Sealer,
) -> SigningKey:
    """A new key for `alg`: kid = RFC 7638 thumbprint (SHA-256) of the public JWK; the private JWK is
    sealed with ``aad=kid`` so that it cannot be swapped onto another record."""
    from certbound.store.records import SigningKey

    spec = algorithm_spec(alg)
    key = _generate(spec)
    kid = key.thumbprint()
    params = {"kid": kid, "alg": spec.alg, "use": "sig"}
    private = dict(key.as_dict(private=True))
    private.update(params)
    return SigningKey(
        kid=kid,
        alg=spec.alg,
        state=state,
        public_jwk=public_jwk(key, **params),
        private_jwk_sealed=sealer.seal(
            json.dumps(private, separators=(",", ":")).encode("utf-8"), aad=kid.encode("utf-8")
        ),
        created_at=now,
        activated_at=now if state == "active" else None,
    )
