"""A plain, JSON-ready description of a certificate, for ``certbound pki inspect``, logs and admin views.

Contains only public facts (names, validity, key type, thumbprint), never key material.
"""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

from certbound.pki.dn import cert_name_text
from certbound.pki.san import SubjectAltNames
from certbound.pki.thumbprint import x5t_s256

__all__ = ["describe_cert", "is_ca", "is_self_signed", "key_type"]

_CURVES = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}


def key_type(public_key: object) -> str:
    """A short human name for a public (or private) key: ``EC P-256``, ``RSA 2048``, ``Ed25519``."""
    if isinstance(public_key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        return f"EC {_CURVES.get(public_key.curve.name, public_key.curve.name)}"
    if isinstance(public_key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        return f"RSA {public_key.key_size}"
    if isinstance(public_key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "Ed25519"
    if isinstance(public_key, ed448.Ed448PublicKey | ed448.Ed448PrivateKey):
        return "Ed448"
    if isinstance(public_key, dsa.DSAPublicKey | dsa.DSAPrivateKey):
        return f"DSA {public_key.key_size}"
    return type(public_key).__name__


def is_self_signed(cert: x509.Certificate) -> bool:
    """Subject equals issuer and the certificate's own key verifies its signature. cryptography
    compares the names' bytes there, so a name it cannot decode (it raises only when one is read)
    is judged like any other."""
    try:
        cert.verify_directly_issued_by(cert)
    except Exception:  # other names, an unsupported key, a bad signature: not (verifiably) self-signed
        return False
    return True


def is_ca(cert: x509.Certificate) -> bool:
    """BasicConstraints CA:TRUE."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def describe_cert(cert: x509.Certificate) -> dict[str, Any]:
    """Subject, issuer, serial, validity (ISO 8601 UTC), key type, SANs by kind, CA/self-signed, x5t#S256."""
    sans = SubjectAltNames.from_cert(cert)
    return {
        "subject": cert_name_text(cert, "subject"),
        "issuer": cert_name_text(cert, "issuer"),
        "serial": format(cert.serial_number, "x"),
        "not_before": cert.not_valid_before_utc.isoformat().replace("+00:00", "Z"),
        "not_after": cert.not_valid_after_utc.isoformat().replace("+00:00", "Z"),
        "key_type": key_type(cert.public_key()),
        "san": {
            "dns": list(sans.dns),
            "uri": list(sans.uris),
            "ip": [str(ip) for ip in sans.ips],
            "email": list(sans.emails),
        },
        "self_signed": is_self_signed(cert),
        "is_ca": is_ca(cert),
        "x5t#S256": x5t_s256(cert),
    }
