"""The private key types certbound issues and loads, in one place.

Kept separate from issuance so that PEM loading, JWK conversion and certificate issuance agree on
one definition of "a key we support" (EC P-256/P-384, RSA, Ed25519).
"""

from __future__ import annotations

from typing import Literal, TypeAlias, get_args

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "KEY_KINDS",
    "KeyKind",
    "PrivateKey",
    "PublicKey",
    "is_supported_private_key",
    "new_private_key",
    "signature_hash",
    "spki_der",
]

KeyKind = Literal["ec-p256", "ec-p384", "rsa-2048", "rsa-3072", "ed25519"]
KEY_KINDS: tuple[str, ...] = get_args(KeyKind)

PrivateKey: TypeAlias = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
PublicKey: TypeAlias = ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey


def new_private_key(kind: KeyKind = "ec-p256") -> PrivateKey:
    """Generate a new private key of the given kind (EC keys are fast; RSA generation is slow)."""
    if kind == "ec-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "ec-p384":
        return ec.generate_private_key(ec.SECP384R1())
    if kind == "rsa-2048":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "rsa-3072":
        return rsa.generate_private_key(public_exponent=65537, key_size=3072)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(f"unknown key kind {kind!r}; expected one of {', '.join(KEY_KINDS)}")


def is_supported_private_key(key: object) -> bool:
    """True when ``key`` is one of the private key types in :data:`PrivateKey`."""
    return isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey)


def signature_hash(key: PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
    """The digest to sign certificates with for ``key`` (None for Ed25519, which hashes itself)."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return None
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.key_size > 256:
        return hashes.SHA384()
    return hashes.SHA256()


def spki_der(public_key: CertificatePublicKeyTypes) -> bytes:
    """The DER SubjectPublicKeyInfo of a public key: equal bytes mean the same key."""
    return public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
