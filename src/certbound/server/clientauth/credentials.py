"""Credentials as the methods check them: parsed once per directory entry or fetch, not per request.

Registered keys and certificates come from two places, the client's stored credentials
(``certbound.server.clients.credential_records`` wrote them) and its ``jwks_uri``; both end up as these
records, so the methods do not care where a key came from.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.errors import SecurityWarning
from joserfc.jwk import JWKRegistry, Key

from certbound.pki.jwk import jwk_matches_cert
from certbound.pki.thumbprint import x5t_s256

__all__ = [
    "MIN_RSA_BITS",
    "RegisteredCert",
    "RegisteredJwk",
    "SecretDigest",
    "certificate_from_pem",
    "find_certificate",
    "import_public_jwk",
    "jwk_from_json",
    "keys_from_jwk_set",
    "registered_cert",
]

MIN_RSA_BITS = 2048
_PRIVATE_MEMBERS = ("d", "p", "q", "dp", "dq", "qi", "oth", "k")


@dataclass(frozen=True, slots=True)
class SecretDigest:
    """The SHA-256 of a client secret (client_secret_basic/post), with the credential's validity."""

    digest: bytes
    not_before: datetime | None = None
    not_after: datetime | None = None


@dataclass(frozen=True, slots=True)
class RegisteredCert:
    """A certificate registered for ``self_signed_tls_client_auth``: its ``x5t#S256`` and validity."""

    thumbprint: str
    not_before: datetime
    not_after: datetime

    def window_reason(self, now: datetime) -> str | None:
        """``cert.expired`` / ``cert.not_yet_valid`` when `now` is outside the validity, else None."""
        if now < self.not_before:
            return "cert.not_yet_valid"
        if now > self.not_after:
            return "cert.expired"
        return None


@dataclass(frozen=True, slots=True)
class RegisteredJwk:
    """A public key that may sign the client's assertions (private_key_jwt)."""

    key: Key
    kid: str | None  # as registered; None when the JWK has no kid
    thumbprint: str  # RFC 7638
    use: str | None
    alg: str | None

    def named_by(self, kid: str) -> bool:
        """True when an assertion's `kid` designates this key (its kid, or its thumbprint if it has none)."""
        return kid == self.kid if self.kid is not None else kid == self.thumbprint


def import_public_jwk(jwk: Mapping[str, Any]) -> RegisteredJwk:
    """Import a public JWK; ValueError for private or symmetric key material, weak RSA, or garbage."""
    if not isinstance(jwk, Mapping) or jwk.get("kty") not in ("EC", "RSA", "OKP"):
        raise ValueError("not an EC, RSA or OKP JWK")
    if any(member in jwk for member in _PRIVATE_MEMBERS):
        raise ValueError("holds private key material")
    kid = jwk.get("kid")
    if kid is not None and (not isinstance(kid, str) or not kid):
        raise ValueError("kid is not a non-empty string")
    use, alg = jwk.get("use"), jwk.get("alg")
    if use is not None and not isinstance(use, str):
        raise ValueError("use is not a string")
    if alg is not None and not isinstance(alg, str):
        raise ValueError("alg is not a string")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SecurityWarning)
            key = JWKRegistry.import_key({k: v for k, v in jwk.items() if k not in ("x5c", "x5u")})
    except Exception as exc:  # joserfc reports bad key data with many exception types
        raise ValueError(f"not a valid public key ({type(exc).__name__})") from None
    public = key.public_key
    if isinstance(public, rsa.RSAPublicKey) and public.key_size < MIN_RSA_BITS:
        raise ValueError(f"RSA key of {public.key_size} bits (at least {MIN_RSA_BITS} required)")
    return RegisteredJwk(key=key, kid=kid, thumbprint=key.thumbprint(), use=use, alg=alg)


def _x5c_leaf(jwk: Mapping[str, Any]) -> x509.Certificate:
    x5c = jwk.get("x5c")
    if not isinstance(x5c, list) or not x5c or not isinstance(x5c[0], str):
        raise ValueError("x5c is not a non-empty array of base64 certificates")
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode(x5c[0], validate=True))
    except (ValueError, binascii.Error):
        raise ValueError("x5c[0] is not a base64 DER certificate") from None
    if not jwk_matches_cert(jwk, cert):
        raise ValueError("the certificate in x5c[0] does not hold this JWK's key")
    return cert


def registered_cert(cert: x509.Certificate) -> RegisteredCert:
    return RegisteredCert(x5t_s256(cert), cert.not_valid_before_utc, cert.not_valid_after_utc)


def certificate_from_pem(pem: str) -> RegisteredCert:
    """A stored ``certificate`` credential's PEM (ValueError when it does not parse)."""
    return registered_cert(x509.load_pem_x509_certificate(pem.encode("ascii")))


def keys_from_jwk_set(
    keys: Iterable[Any],
) -> tuple[tuple[RegisteredJwk, ...], tuple[RegisteredCert, ...], list[str]]:
    """Split a JWK Set's ``keys`` into signing keys and ``x5c`` leaf certificates.

    A key that cannot be used is skipped (RFC 7517 section 5 lets a reader ignore what it does not
    understand) and named in the returned problems; a JWK whose ``x5c`` leaf carries another key is
    dropped entirely, key and certificate, since it contradicts itself.
    """
    jwks: list[RegisteredJwk] = []
    certs: list[RegisteredCert] = []
    problems: list[str] = []
    for index, jwk in enumerate(keys):
        try:
            imported = import_public_jwk(jwk)
            cert = _x5c_leaf(jwk) if "x5c" in jwk else None
        except (ValueError, TypeError) as exc:
            problems.append(f"keys[{index}]: {exc}")
            continue
        jwks.append(imported)
        if cert is not None:
            certs.append(registered_cert(cert))
    return tuple(jwks), tuple(certs), problems


def jwk_from_json(text: str) -> RegisteredJwk:
    """A stored ``jwk`` credential (JSON text)."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError("stored JWK is not JSON") from None
    return import_public_jwk(data)


def find_certificate(registered: Iterable[RegisteredCert], thumbprint: str) -> RegisteredCert | None:
    """The registered certificate with this ``x5t#S256``, comparing every entry in constant time."""
    wanted = thumbprint.encode("ascii", "replace")
    found: RegisteredCert | None = None
    for cert in registered:
        if hmac.compare_digest(cert.thumbprint.encode("ascii", "replace"), wanted) and found is None:
            found = cert
    return found
