"""Credentials as the methods check them: parsed once per directory entry or fetch, not per request.

Registered keys and certificates come from two places, the client's stored credentials
(``certbound.server.clients.credential_records`` wrote them) and its ``jwks_uri``; both end up as
these records, so the methods do not care where a key came from. Reading JWKs and JWK Sets is generic
and lives in :mod:`certbound.jose.jwk_set`; a registered key is a
:class:`certbound.jose.jwk_set.PublicJwk`.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography import x509

from certbound.jose.jwk_set import MIN_RSA_BITS, PublicJwk, import_public_jwk, read_jwk_set
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

#: A public key that may sign the client's assertions (private_key_jwt).
RegisteredJwk = PublicJwk


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


def registered_cert(cert: x509.Certificate) -> RegisteredCert:
    return RegisteredCert(x5t_s256(cert), cert.not_valid_before_utc, cert.not_valid_after_utc)


def certificate_from_pem(pem: str) -> RegisteredCert:
    """A stored ``certificate`` credential's PEM (ValueError when it does not parse)."""
    return registered_cert(x509.load_pem_x509_certificate(pem.encode("ascii")))


def keys_from_jwk_set(
    keys: Iterable[Any],
) -> tuple[tuple[RegisteredJwk, ...], tuple[RegisteredCert, ...], list[str]]:
    """Split a JWK Set's ``keys`` into signing keys and ``x5c`` leaf certificates, and name what was
    skipped (see :func:`certbound.jose.jwk_set.read_jwk_set`)."""
    jwks = read_jwk_set(keys)
    return jwks.keys, tuple(registered_cert(cert) for cert in jwks.certificates), list(jwks.problems)


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
