"""Checking a signature over DER bytes with a certificate's public key (for OCSP responses).

cryptography verifies CRL signatures itself (``is_signature_valid``) but offers nothing for an OCSP
response, whose signed bytes and algorithm it does expose. Supported: ECDSA, RSA PKCS#1 v1.5, Ed25519
and Ed448; an RSASSA-PSS signature (whose parameters the OCSP object does not expose) counts as not
verified, which fails closed.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import SignatureAlgorithmOID

__all__ = ["signature_valid"]


def signature_valid(
    public_key: CertificatePublicKeyTypes,
    signature: bytes,
    data: bytes,
    hash_algorithm: hashes.HashAlgorithm | None,
    algorithm_oid: object,
) -> bool:
    """True when `signature` over `data` verifies with `public_key` (never raises)."""
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            if hash_algorithm is None:
                return False
            public_key.verify(signature, data, ec.ECDSA(hash_algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey):
            if hash_algorithm is None or algorithm_oid == SignatureAlgorithmOID.RSASSA_PSS:
                return False
            public_key.verify(signature, data, padding.PKCS1v15(), hash_algorithm)
        elif isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        else:
            return False
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True
