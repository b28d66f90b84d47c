"""JWKs for certificates: the certificate's key with ``x5c`` / ``x5t#S256`` (RFC 7517 section 4.7-4.9).

``self_signed_tls_client_auth`` clients register their certificate inside a JWK (``jwks`` or
``jwks_uri``); the AS matches the presented certificate against it. A JWK whose ``x5c`` leaf carries a
different key than the JWK itself is contradictory and must be rejected: :func:`jwk_matches_cert`.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from joserfc.jwk import ECKey, OKPKey, RSAKey, import_key

from certbound.pki.keys import PrivateKey, spki_der
from certbound.pki.thumbprint import x5t_s256

__all__ = ["jwk_matches_cert", "jwk_with_x5c"]


def _spki(public_key: object) -> bytes:
    if not isinstance(public_key, ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey):
        raise ValueError(f"unsupported key type {type(public_key).__name__}")
    return spki_der(public_key)


def _joserfc_key(key: object) -> ECKey | RSAKey | OKPKey:
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return ECKey.import_key(key)
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return RSAKey.import_key(key)
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return OKPKey.import_key(key)
    raise ValueError(f"unsupported key type {type(key).__name__}")


def jwk_with_x5c(
    cert: x509.Certificate,
    chain: Sequence[x509.Certificate] = (),
    *,
    private_key: PrivateKey | None = None,
    kid: str | None = None,
    alg: str | None = None,
    use: str | None = "sig",
) -> dict[str, Any]:
    """The JWK of ``cert``'s key with ``x5c`` (leaf first, then ``chain``) and ``x5t#S256``.

    ``kid`` defaults to the RFC 7638 thumbprint. With ``private_key`` (which must be the certificate's
    key) the private members are included too.
    """
    if private_key is not None:
        if _spki(private_key.public_key()) != _spki(cert.public_key()):
            raise ValueError("private_key is not the key of the certificate")
        key = _joserfc_key(private_key)
    else:
        key = _joserfc_key(cert.public_key())
    out: dict[str, Any] = dict(key.as_dict(private=private_key is not None))
    out["kid"] = kid if kid is not None else key.thumbprint()
    if use is not None:
        out["use"] = use
    if alg is not None:
        out["alg"] = alg
    out["x5c"] = [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in (cert, *chain)]
    out["x5t#S256"] = x5t_s256(cert)
    return out


def jwk_matches_cert(jwk: Mapping[str, Any], cert: x509.Certificate) -> bool:
    """True when the JWK's public key is the certificate's public key (False on any malformed input)."""
    if jwk.get("kty") not in ("EC", "RSA", "OKP"):
        return False
    try:
        members = {k: v for k, v in jwk.items() if k not in ("x5c", "x5t", "x5t#S256", "x5u")}
        key = import_key(members)
        public = key.public_key
        return _spki(public) == _spki(cert.public_key())
    except Exception:  # malformed JWK, unsupported key type: not a match
        return False
